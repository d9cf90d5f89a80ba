// The official `openai` npm client against a running `sluice serve` on the
// bundled config. Run by tests/integration/openai_client_test.cc, which
// starts the server and passes, in the environment:
//   SLUICE_BASE_URL     http://127.0.0.1:PORT/v1
//   SLUICE_KEY          a key without tight limits
//   SLUICE_LIMITED_KEY  a key allowed 20 requests a minute (one each 3 s)
//   EXPECT_COMPLETION   the simulator's text for prompt "hello", max_tokens 5
//   EXPECT_CHAT         its text for the chat below, max_tokens 6
//   MODEL_SERVER_URL    the `sluice model-server` behind model sluice-chat
//                       (openai_api: chat, streaming 20 words a second)
//   EXPECT_STREAMED_CHAT  its text for "hi there", max_tokens 40
// Prints one line per check; exits 1 at the first failure.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const baseURL = env('SLUICE_BASE_URL');
const client = new OpenAI({ apiKey: env('SLUICE_KEY'), baseURL, maxRetries: 0 });
const chatMessages = [
  { role: 'system', content: 'be brief' },
  { role: 'user', content: 'hi there' },
];

const checks = {
  async embeddingsOfAnArray() {
    const texts = ['first text', 'second', 'a third, longer text'];
    // The client asks for base64 unless told otherwise, and decodes it.
    const b64 = await client.embeddings.create({ model: 'sluice-sim-embed', input: texts });
    const floats = await client.embeddings.create({
      model: 'sluice-sim-embed', input: texts, encoding_format: 'float',
    });
    assert.equal(b64.data.length, 3);
    for (let i = 0; i < 3; i++) {
      assert.equal(b64.data[i].index, i);
      assert.equal(b64.data[i].embedding.length, 256);
      // The same float32s: the JSON numbers are their shortest decimal form.
      assert.deepEqual(b64.data[i].embedding, floats.data[i].embedding.map(Math.fround));
      const norm = Math.hypot(...b64.data[i].embedding);
      assert.ok(Math.abs(norm - 1) < 1e-3, `norm ${norm}`);
    }
    assert.notDeepEqual(b64.data[0].embedding, b64.data[1].embedding);
    assert.ok(b64.usage.prompt_tokens > 0);
    const short = await client.embeddings.create({
      model: 'sluice-sim-embed', input: 'x', dimensions: 16,
    });
    assert.equal(short.data[0].embedding.length, 16);
  },

  async completion() {
    const r = await client.completions.create({
      model: 'sluice-sim-small', prompt: 'hello', max_tokens: 5,
    });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].text, env('EXPECT_COMPLETION'));
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  },

  async chat() {
    const r = await client.chat.completions.create({
      model: 'sluice-sim-small', messages: chatMessages, max_tokens: 6,
    });
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, env('EXPECT_CHAT'));
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  },

  async chatStreamed() {
    const stream = await client.chat.completions.create({
      model: 'sluice-sim-small', messages: chatMessages, max_tokens: 6, stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let chunks = 0;
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      chunks++;
      for (const c of chunk.choices) {
        text += c.delta?.content ?? '';
        finish = c.finish_reason ?? finish;
      }
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, env('EXPECT_CHAT'));
    assert.ok(chunks > 2, `${chunks} chunks`);
    assert.ok(['stop', 'length'].includes(finish));
    assert.ok(usage && usage.total_tokens > 0);
  },

  async chatStreamedFromAChatBackend() {
    const stream = await client.chat.completions.create({
      model: 'sluice-chat', messages: [{ role: 'user', content: 'hi there' }], max_tokens: 40,
      stream: true,
    });
    let text = '';
    let finishedAtFirst = null;
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta?.content ?? '';
      if (piece && finishedAtFirst === null) {
        // The model server's own count: has it finished this stream yet?
        const streams = await (await fetch(`${env('MODEL_SERVER_URL')}/admin/streams`)).json();
        finishedAtFirst = streams.finished;
      }
      text += piece;
    }
    assert.equal(text, env('EXPECT_STREAMED_CHAT'));
    assert.equal(finishedAtFirst, 0, 'the first chunk came only once the model server had finished');
  },

  async unknownKeyIsAnAuthenticationError() {
    const stranger = new OpenAI({ apiKey: 'sk-not-a-key', baseURL, maxRetries: 0 });
    await assert.rejects(
      stranger.completions.create({ model: 'sluice-sim-small', prompt: 'x' }),
      (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 &&
             e.code === 'invalid_api_key');
  },

  async badParameterIsABadRequestNamingIt() {
    await assert.rejects(
      client.completions.create({ model: 'sluice-sim-small', prompt: 'x', n: 2 }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'n' &&
             e.message.includes('n: only 1 is supported'));
    await assert.rejects(
      client.chat.completions.create({ model: 'nope', messages: chatMessages }),
      (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  },

  async rateLimitIsARateLimitErrorAndRetryHonoursRetryAfter() {
    const limited = new OpenAI({ apiKey: env('SLUICE_LIMITED_KEY'), baseURL, maxRetries: 0 });
    const one = () => limited.completions.create({
      model: 'sluice-sim-small', prompt: 'x', max_tokens: 1,
    });
    // The key's whole minute (20 requests) at once: then it is refused
    // until the next one refills, 3 s after the first was charged.
    const burst = await Promise.allSettled(Array.from({ length: 20 }, one));
    assert.equal(burst.filter((r) => r.status === 'fulfilled').length, 20);
    let retryAfter = 0;
    await assert.rejects(one(), (e) => {
      retryAfter = Number(e.headers?.get('retry-after'));
      return e instanceof OpenAI.RateLimitError && e.status === 429 &&
             e.code === 'rate_limit_exceeded' &&
             e.headers.get('x-ratelimit-limit-requests') === '20';
    });
    assert.ok(retryAfter >= 1 && retryAfter <= 3, `retry-after ${retryAfter}`);
    // The client's own retry waits what retry-after says, then succeeds.
    const attempts = [];
    const retrying = new OpenAI({
      apiKey: env('SLUICE_LIMITED_KEY'), baseURL, maxRetries: 3,
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        attempts.push({ at: Date.now(), status: res.status, retryAfter: res.headers.get('retry-after') });
        return res;
      },
    });
    const r = await retrying.completions.create({
      model: 'sluice-sim-small', prompt: 'x', max_tokens: 1,
    });
    assert.ok(r.choices[0].text.length > 0);
    assert.equal(attempts.at(-1).status, 200);
    for (let i = 0; i + 1 < attempts.length; i++) {
      assert.equal(attempts[i].status, 429);
      const waited = attempts[i + 1].at - attempts[i].at;
      assert.ok(waited >= Number(attempts[i].retryAfter) * 1000 - 50, `waited ${waited} ms`);
    }
  },
};

for (const [name, check] of Object.entries(checks)) {
  try {
    await check();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`FAILED ${name}: ${e.stack ?? e}`);
    process.exit(1);
  }
}
console.log('all checks passed');
