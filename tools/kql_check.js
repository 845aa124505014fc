#!/usr/bin/env node
// Offline KQL analysis with Kusto.Language (npm @kusto/language-service-next).
//
// stdin : {"tables": {"<Table>": "(Col:type, ...)"},
//          "queries": [{"name": "...", "query": "...", "tables": {optional extra tables}}]}
// stdout: {"analysed": n, "errors": n, "warnings": n,
//          "results": [{"name", "columns": [{"name","type"}] (result schema, when tabular),
//                       "diagnostics": [{"severity","code","message","line","column","snippet"}]}]}
// Exit  : 0 when no query has an error diagnostic, 1 when one has, 2 on bad input.
'use strict';
const path = require('path');

function loadKusto() {
  const base = path.join(__dirname, '..', 'node_modules', '@kusto', 'language-service-next');
  require(path.join(base, 'bridge.js'));
  require(path.join(base, 'Kusto.Language.Bridge.js'));
  return globalThis.Kusto.Language;
}

function globalsFor(K, tables) {
  const symbols = Object.entries(tables).map(
    ([name, schema]) => new K.Symbols.TableSymbol.$ctor7(name, schema, null));
  const db = new K.Symbols.DatabaseSymbol.$ctor1('workspace', symbols);
  const cluster = new K.Symbols.ClusterSymbol.$ctor1('loganalytics', [db]);
  return K.GlobalState.Default.WithCluster(cluster).WithDatabase(db);
}

function position(text, offset) {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

function resultColumns(code) {
  const type = code.ResultType;
  const columns = [];
  if (!type || !type.Columns) return columns;
  for (let i = 0; i < type.Columns.Count; i++) {
    const c = type.Columns.getItem(i);
    columns.push({ name: c.Name, type: c.Type ? c.Type.Name : '' });
  }
  return columns;
}

function analyse(K, input) {
  const shared = input.tables || {};
  const cache = new Map();
  const results = [];
  let errors = 0;
  let warnings = 0;
  for (const q of input.queries || []) {
    const tables = Object.assign({}, shared, q.tables || {});
    const key = JSON.stringify(Object.keys(tables).sort().map((t) => [t, tables[t]]));
    if (!cache.has(key)) cache.set(key, globalsFor(K, tables));
    const code = K.KustoCode.ParseAndAnalyze(q.query, cache.get(key));
    const list = code.GetDiagnostics();
    const diagnostics = [];
    for (let i = 0; i < list.Count; i++) {
      const d = list.getItem(i);
      const severity = String(d.Severity);
      if (severity === 'Error') errors++;
      else if (severity === 'Warning') warnings++;
      else continue; // suggestions and hints are not findings
      diagnostics.push(Object.assign({ severity, code: d.Code, message: d.Message },
        position(q.query, d.Start),
        { snippet: q.query.substr(d.Start, Math.max(d.Length, 1)) }));
    }
    results.push({ name: q.name, columns: resultColumns(code), diagnostics });
  }
  return { analysed: results.length, errors, warnings, results };
}

function main() {
  let raw = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => { raw += chunk; });
  process.stdin.on('end', () => {
    let input;
    try {
      input = JSON.parse(raw);
    } catch (err) {
      process.stderr.write(`kql_check: stdin is not JSON: ${err.message}\n`);
      process.exit(2);
    }
    const report = analyse(loadKusto(), input);
    process.stdout.write(JSON.stringify(report, null, 1) + '\n');
    process.exit(report.errors ? 1 : 0);
  });
}

main();
