#!/usr/bin/env bash
# Checks deploy/prometheus/alerts.yml and deploy/grafana/sluice.json:
#   1. promtool check rules / test rules (alerts_test.yml's synthetic series);
#   2. every PromQL expression of the Grafana dashboard parses (promtool
#      checks them as recording rules, with the dashboard's variables set);
#   3. every sluice_* metric either file reads is one Sluice exports (a
#      string literal in src/), so a renamed metric cannot leave a silent
#      panel or an alert that never fires.
# Usage: check_monitoring.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: check_monitoring.sh SOURCE_DIR}
alerts=$src/deploy/prometheus/alerts.yml
dashboard=$src/deploy/grafana/sluice.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

promtool check rules "$alerts"
(cd "$(dirname "$alerts")" && promtool test rules alerts_test.yml)

# The dashboard's queries as recording rules (JSON is YAML).
node - "$dashboard" "$work/dashboard_rules.yml" "$work/dashboard_exprs.txt" <<'JS'
const fs = require('fs');
const [, , dashboardPath, rulesPath, exprsPath] = process.argv;
const d = JSON.parse(fs.readFileSync(dashboardPath, 'utf8'));
const fail = (m) => { console.error('sluice.json: ' + m); process.exit(1); };
const ids = new Set();
const exprs = [];
for (const p of d.panels) {
  if (ids.has(p.id)) fail(`panel id ${p.id} repeated`);
  ids.add(p.id);
  const g = p.gridPos;
  if (!g || g.x + g.w > 24) fail(`panel "${p.title}" is outside the 24-column grid`);
  if (p.type === 'row') continue;
  if (!p.targets || p.targets.length === 0) fail(`panel "${p.title}" has no query`);
  for (const t of p.targets) exprs.push(t.expr);
}
for (const v of d.templating.list) {
  if (v.type === 'query') exprs.push(v.query.query.replace(/^label_values\((\w+), *\w+\)$/, '$1'));
}
// Grafana's variables, as Grafana would substitute them.
const bind = (e) => e.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h')
                     .replaceAll('$model', '.*');
const rules = exprs.map((e, i) => ({ record: `dashboard:query${i}`, expr: bind(e) }));
fs.writeFileSync(rulesPath, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }, null, 1));
fs.writeFileSync(exprsPath, exprs.join('\n') + '\n');
console.log(`sluice.json: ${d.panels.length} panels, ${exprs.length} queries`);
JS
promtool check rules "$work/dashboard_rules.yml"

missing=0
names=$(cat "$alerts" "$work/dashboard_exprs.txt" | grep -oE '\bsluice_[a-z_]+' | sort -u)
for name in $names; do
  base=$(sed -E 's/_(bucket|sum|count)$//' <<<"$name")
  if ! grep -rqF "\"$base\"" "$src/src" && ! grep -rqF "\"$name\"" "$src/src"; then
    echo "not exported by Sluice: $name" >&2
    missing=1
  fi
done
[[ $missing == 0 ]]
echo "metrics read: $(wc -w <<<"$names"), all exported"
