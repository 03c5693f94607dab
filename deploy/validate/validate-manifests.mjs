// Second half of the offline manifest validation (the first is kubernetes-validate
// --strict for the built-in kinds). Reads the output of `kubectl kustomize OVERLAY`:
//
//   kubectl kustomize k8s/overlays/prod | node deploy/validate/validate-manifests.mjs prod
//
// 1. Schema: ServiceMonitor and PrometheusRule (which kubernetes-validate cannot load)
//    through @kubernetes-models/prometheus-operator; every other kind must be one that
//    kubernetes-validate knows (an unknown kind fails here instead of only warning there).
// 2. Policy: what docs/operations.md promises about the deployment, checked on the
//    rendered objects, so an overlay cannot silently break it.

import { readFileSync } from "node:fs";
import YAML from "yaml";
import { ServiceMonitor, PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const overlay = process.argv[2] ?? "(stdin)";
const docs = YAML.parseAllDocuments(readFileSync(0, "utf8")).map((d) => d.toJS()).filter(Boolean);
const errors = [];
const fail = (msg) => errors.push(`${overlay}: ${msg}`);

const BUILTIN = new Set([
  "v1/Namespace", "v1/ServiceAccount", "v1/ConfigMap", "v1/Secret", "v1/Service",
  "apps/v1/Deployment", "apps/v1/StatefulSet", "policy/v1/PodDisruptionBudget",
  "autoscaling/v2/HorizontalPodAutoscaler", "networking.k8s.io/v1/Ingress",
  "networking.k8s.io/v1/NetworkPolicy",
]);
const CRD = { "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor, "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule };

for (const d of docs) {
  const key = `${d.apiVersion}/${d.kind}`;
  if (CRD[key]) {
    try {
      new CRD[key](d).validate();
    } catch (e) {
      fail(`${d.kind}/${d.metadata?.name}: ${e.message}`);
    }
  } else if (!BUILTIN.has(key)) {
    fail(`${key} ${d.metadata?.name}: kind not covered by either validator`);
  }
}

// ---------------------------------------------------------------- policy

const find = (kind, name) => docs.find((d) => d.kind === kind && (!name || d.metadata.name === name));
const dep = find("Deployment", "lms-realtime");
const cm = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name.startsWith("lms-realtime-config"));
const check = (cond, msg) => cond || fail(msg);

if (!dep) fail("no Deployment lms-realtime");
else {
  const spec = dep.spec;
  const pod = spec.template.spec;
  const c = pod.containers.find((x) => x.name === "gateway");
  check(spec.replicas >= 3, `replicas ${spec.replicas} < 3`);
  check(spec.strategy?.rollingUpdate?.maxUnavailable === 0, "rolling update must keep maxUnavailable 0");
  check(c, "no container named gateway");
  if (c) {
    check(c.readinessProbe?.httpGet?.path === "/readyz", "readiness probe must be GET /readyz");
    check(c.livenessProbe?.httpGet?.path === "/healthz", "liveness probe must be GET /healthz");
    for (const r of ["cpu", "memory"]) {
      check(c.resources?.requests?.[r], `no ${r} request`);
      check(c.resources?.limits?.[r], `no ${r} limit`);
    }
    check(c.securityContext?.readOnlyRootFilesystem === true, "readOnlyRootFilesystem must be true");
    check(c.securityContext?.allowPrivilegeEscalation === false, "allowPrivilegeEscalation must be false");
    check(pod.securityContext?.runAsNonRoot === true, "pod runAsNonRoot must be true");
    const pre = c.lifecycle?.preStop?.exec?.command;
    const preStop = pre?.[0] === "sleep" ? Number(pre[1]) : pre ? NaN : 0;
    check(Number.isFinite(preStop), `preStop must be a plain sleep: ${JSON.stringify(pre)}`);
    const drain = Number(cm?.data?.DRAIN_TIMEOUT_SECS ?? 20);
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    check(grace >= preStop + drain + 1,
      `terminationGracePeriodSeconds ${grace} must exceed preStop ${preStop} s + DRAIN_TIMEOUT_SECS ${drain} s`);
    const envFrom = c.envFrom ?? [];
    const secretRef = envFrom.find((e) => e.secretRef)?.secretRef?.name;
    const secret = docs.find((d) => d.kind === "Secret" && d.metadata.name === secretRef);
    check(secret, `Secret ${secretRef} referenced by the Deployment is not in the overlay`);
    if (secret) {
      const keys = Object.keys({ ...secret.data, ...secret.stringData });
      for (const k of ["JWT_SECRET", "REDIS_URL"]) check(keys.includes(k), `Secret ${secretRef} has no ${k}`);
    }
  }
  check(pod.affinity?.podAntiAffinity, "no pod anti-affinity");
}

const ing = find("Ingress", "lms-realtime");
if (!ing) fail("no Ingress");
else {
  const a = ing.metadata.annotations ?? {};
  check(a["nginx.ingress.kubernetes.io/affinity"] === "cookie", "Ingress needs cookie affinity (long-polling)");
  for (const t of ["proxy-read-timeout", "proxy-send-timeout"]) {
    check(Number(a[`nginx.ingress.kubernetes.io/${t}`]) > 45, `Ingress ${t} must exceed pingInterval + pingTimeout (45 s)`);
  }
}

check(find("PodDisruptionBudget"), "no PodDisruptionBudget");
const hpa = find("HorizontalPodAutoscaler");
check(hpa?.spec?.minReplicas >= 3, "HPA minReplicas must be >= 3");
check(hpa?.spec?.metrics?.some((m) => m.resource?.name === "cpu"), "HPA must scale on CPU");
check(find("ServiceMonitor"), "no ServiceMonitor");
const rule = find("PrometheusRule");
const alerts = new Set((rule?.spec?.groups ?? []).flatMap((g) => g.rules.map((r) => r.alert).filter(Boolean)));
for (const a of ["LmsRealtimeNoReadyNodes", "LmsRealtimeRedisUnreachable", "LmsRealtimeStoreErrors",
  "LmsRealtimeConnectionRefusalSpike", "LmsRealtimeSecurityEventsSpike", "LmsRealtimeEventLatencyHigh",
  "LmsRealtimeAdapterDrops"]) {
  check(alerts.has(a), `PrometheusRule lacks alert ${a}`);
}

if (errors.length) {
  console.error(errors.join("\n"));
  process.exit(1);
}
console.log(`${overlay}: ${docs.length} objects; CRD schemas and deployment policy OK`);
