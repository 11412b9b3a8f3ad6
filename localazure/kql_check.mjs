// Type-check KQL queries with Microsoft's Kusto language service (npm
// @kusto/language-service-next: Kusto.Language compiled to JavaScript by Bridge.NET).
//
// stdin:  {"schema": {"Table": [{"name": "Col", "type": "string"}, ...]},
//          "queries": [{"name": "file.kql", "text": "..."}]}
// stdout: [{"name": "file.kql",
//           "diagnostics": [{severity, code, category, message, start, length}]}]
// Exit 0 whenever the queries were checked (their diagnostics are data); exit 2 on a bad request.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
// bridge.js is the Bridge.NET runtime; it and the compiled library install themselves as
// globals (Bridge, System, Kusto) rather than exporting anything.
require("@kusto/language-service-next/bridge.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.js");
const { Kusto, Bridge } = globalThis;
const { GlobalState, KustoCode } = Kusto.Language;
const { ColumnSymbol, DatabaseSymbol, ScalarTypes, TableSymbol } = Kusto.Language.Symbols;
const { KustoCodeService } = Kusto.Language.Editor;
const { SyntaxKind } = Kusto.Language.Syntax;

function fail(message) {
  process.stderr.write(`kql_check: ${message}\n`);
  process.exit(2);
}

function databaseFrom(schema) {
  const tables = Object.entries(schema).map(([table, columns]) =>
    // TableSymbol.$ctor4 is the (name, ColumnSymbol[]) constructor.
    new TableSymbol.$ctor4(table, columns.map(({ name, type }) => {
      const scalar = ScalarTypes.GetSymbol(type);
      // ColumnSymbol would silently turn an unknown type into "unknown", which
      // type-checks against anything: refuse it instead.
      if (!scalar) fail(`column ${table}.${name} has unknown type ${JSON.stringify(type)}`);
      return new ColumnSymbol(name, scalar);
    })));
  return new DatabaseSymbol("workspace", tables);
}

// Kusto.Language declares == and != for any pair of scalars, but the engine rejects comparing
// values of different kinds ("Cannot compare values of types long and string"), e.g.
// `StatusCode == 200` where StatusCode is a string. Only kinds the engine never converts
// between are checked; dynamic, bool, guid and unknown operands are left alone.
const COMPARABLE_KIND = {
  int: "number", long: "number", real: "number", decimal: "number",
  string: "string", datetime: "datetime", timespan: "timespan",
};

function comparisonDiagnostics(code) {
  const found = [];
  code.Syntax.WalkElements((element) => {
    const kind = element.Kind;
    if (kind !== SyntaxKind.EqualExpression && kind !== SyntaxKind.NotEqualExpression) return;
    const left = element.Left.ResultType?.Name;
    const right = element.Right.ResultType?.Name;
    if (COMPARABLE_KIND[left] && COMPARABLE_KIND[right] &&
        COMPARABLE_KIND[left] !== COMPARABLE_KIND[right]) {
      found.push({
        severity: "Error",
        code: "KQLCHECK001",
        category: "Correctness",
        message: `Cannot compare values of types ${left} and ${right}: Log Analytics rejects ` +
          "this at run time (the language service does not flag it). Add an explicit cast.",
        start: element.TextStart,
        length: element.Width,
      });
    }
  });
  return found;
}

function check(text, globals) {
  const code = KustoCode.ParseAndAnalyze(text, globals);
  // GetDiagnostics: syntax and semantic errors (unknown names, wrong argument types).
  // GetAnalyzerDiagnostics: the editor's analyzers (warnings and suggestions, e.g. KS510 a
  // let variable shadowed by a column, KS501 isnull() on a string).
  const service = new KustoCodeService(code);
  const diagnostics = [
    ...Bridge.toArray(code.GetDiagnostics()),
    ...Bridge.toArray(service.GetAnalyzerDiagnostics(true)),
  ].map((d) => ({
    severity: d.Severity, code: d.Code, category: d.Category, message: d.Message,
    start: d.Start, length: d.Length,
  }));
  return [...diagnostics, ...comparisonDiagnostics(code)].sort((a, b) => a.start - b.start);
}

let request;
try {
  request = JSON.parse(readFileSync(0, "utf8"));
} catch (error) {
  fail(`stdin is not a JSON request: ${error.message}`);
}
if (!request?.schema || !Array.isArray(request.queries)) {
  fail("the request needs schema and queries");
}
const globals = GlobalState.Default.WithDatabase(databaseFrom(request.schema));
const results = request.queries.map(({ name, text }) => ({
  name, diagnostics: check(text, globals),
}));
process.stdout.write(JSON.stringify(results));
