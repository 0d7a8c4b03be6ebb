// Validates KEDA objects (JSON documents on stdin, one array) against KEDA's CRD OpenAPI schema,
// as compiled into JSON-schema validators by @kubernetes-models/keda (installed by scripts/test).
// kubernetes-validate has no CRD schemas, so this is the check for ScaledObjects.
// Usage: node validate_keda.mjs NODE_MODULES_DIR < docs.json
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const modules = process.argv[2];
const docs = JSON.parse(readFileSync(0, "utf8"));
const kinds = {
  ScaledObject: "keda.sh/v1alpha1/ScaledObject.js",
  ScaledJob: "keda.sh/v1alpha1/ScaledJob.js",
  TriggerAuthentication: "keda.sh/v1alpha1/TriggerAuthentication.js",
};
let failed = 0;
let checked = 0;
for (const { file, doc } of docs) {
  const rel = kinds[doc.kind];
  if (!rel || !String(doc.apiVersion).startsWith("keda.sh/")) continue;
  const url = pathToFileURL(path.join(modules, "@kubernetes-models/keda", rel)).href;
  const Model = (await import(url))[doc.kind];
  const name = `${file}: ${doc.kind}/${doc.metadata?.name}`;
  try {
    new Model(doc).validate();
    console.log(`INFO ${name} passed against KEDA's schema`);
  } catch (e) {
    failed++;
    const details = (e.errors || []).map((x) => `${x.instancePath || "/"} ${x.message}`).join("; ");
    console.log(`ERROR ${name}: ${details || e.message}`);
  }
  checked++;
}
if (checked === 0) {
  console.log("ERROR no KEDA objects found to validate");
  process.exit(1);
}
process.exit(failed ? 1 : 0);
