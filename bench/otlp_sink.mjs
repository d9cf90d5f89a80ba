// A stand-in OTLP/HTTP receiver for benchmarks: accepts POST /v1/traces,
// counts the spans (one "startTimeUnixNano" each) and answers 200 {}.
// Prints "otlp sink listening on PORT" once bound (port 0: any free one),
// and "otlp sink: N spans in P posts, B bytes" on SIGTERM.
import http from 'node:http';

let spans = 0, posts = 0, bytes = 0;
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    posts += 1;
    bytes += body.length;
    spans += body.split('"startTimeUnixNano"').length - 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(`otlp sink listening on ${server.address().port}`);
});
process.on('SIGTERM', () => {
  console.log(`otlp sink: ${spans} spans in ${posts} posts, ${bytes} bytes`);
  process.exit(0);
});
