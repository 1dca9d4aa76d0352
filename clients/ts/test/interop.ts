// The interop program of e2e/tsclient_test.go: a new TypeScript client, as
// a user would write one with this package, enrols, bootstraps, pulls,
// pushes a visit, pushes it again and pulls again, once per protocol and
// format. It prints one JSON line per case on stdout; the Go test checks
// on the server that each visit arrived exactly once.
//
//   node dist/test/interop.js config.json
//
// config.json: {"server": "http://127.0.0.1:8080", "cases": [{"protocol":
// "connect" | "grpc" | "grpcweb", "format": "binary" | "json", "code": "..."}]}

import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import {
  bearer,
  type Campaign,
  EnrollmentService,
  FindingKind,
  HybridClock,
  Material,
  newID,
  newVisit,
  nodeID,
  PushRequestSchema,
  RevisitReason,
  SyncService,
  VisitForm,
} from "../src/index.js";

interface Case {
  protocol: "connect" | "grpc" | "grpcweb";
  format: "binary" | "json";
  code: string;
}

interface Config {
  server: string;
  cases: Case[];
}

const callTimeoutMs = 60_000;

function transportFor(server: string, c: Case, interceptors: Interceptor[]): Transport {
  const common = {
    baseUrl: server,
    useBinaryFormat: c.format === "binary",
    // A newer server may send fields this client does not know yet.
    jsonOptions: { ignoreUnknownFields: true },
    interceptors,
    defaultTimeoutMs: callTimeoutMs,
  };
  switch (c.protocol) {
    case "connect":
      return createConnectTransport({ ...common, httpVersion: "1.1" });
    case "grpcweb":
      return createGrpcWebTransport({ ...common, httpVersion: "1.1" });
    case "grpc":
      // Always HTTP/2: on an http:// URL, cleartext (h2c) with prior
      // knowledge, which the server accepts. A connection idle for a
      // moment closes, so that the program ends once its calls have.
      return createGrpcTransport({ ...common, idleConnectionTimeoutMs: 200 });
  }
}

async function run(server: string, c: Case): Promise<Record<string, unknown>> {
  const name = `${c.protocol}/${c.format}`;
  // A replica's id is its own, for life: the clock's node derives from it.
  const replicaId = newID();
  const clock = new HybridClock(nodeID(replicaId));

  const enrolment = createClient(EnrollmentService, transportFor(server, c, []));
  const enrolled = await enrolment.enroll({ code: c.code, deviceName: `ts ${name}` });
  clock.observeServer(enrolled.serverHlc);
  const workerId = enrolled.scope?.worker?.id ?? "";
  const sync = createClient(SyncService, transportFor(server, c, [bearer(enrolled.token)]));

  // Bootstrap in small pages, so that the stream carries several messages.
  const households = new Set<string>();
  let campaigns: Campaign[] = [];
  let cursor = 0n;
  let messages = 0;
  let total = 0;
  for await (const page of sync.bootstrap({ pageSize: 2 })) {
    messages++;
    clock.observeServer(page.serverHlc);
    if (messages === 1) {
      // Where the server began to read: what changed since comes by
      // pulling from here. (A resumed bootstrap keeps its first cursor.)
      cursor = page.cursor;
      total = page.totalHouseholds;
      campaigns = page.campaigns;
    }
    for (const h of page.households) {
      households.add(h.id);
      // Later local writes must win over what this replica has seen.
      clock.observe(h.gridId?.clock?.hlc ?? 0n);
    }
  }

  // Pull from the bootstrap's cursor until the server has no more.
  const pull = async () => {
    const seen = { households: 0, visits: [] as string[], batches: 0 };
    for (;;) {
      const res = await sync.pull({ cursor });
      seen.batches++;
      clock.observeServer(res.serverHlc);
      seen.households += res.households.length;
      seen.visits.push(...res.visits.map((v) => v.id));
      for (const v of res.visits) {
        clock.observe(v.clock?.hlc ?? 0n);
      }
      cursor = res.cursor;
      if (!res.more) {
        return seen;
      }
    }
  };
  const firstPull = await pull();

  const householdId = [...households].sort()[0];
  if (householdId === undefined) {
    throw new Error("the bootstrap brought no household");
  }
  const campaign = campaigns.find((k) => (k.questionnaire?.questions.length ?? 0) > 0);
  const question = campaign?.questionnaire?.questions[0];
  const fixedAt = new Date(Date.now() - 60_000);
  const { change, visit } = newVisit(clock, workerId, {
    householdIds: [householdId],
    form: VisitForm.IN_PERSON,
    notes: `TypeScript ${name}: 门口交谈`,
    materials: [Material.OPEN_LETTER],
    findings: [{ kind: FindingKind.HAZARD, note: "楼道堆物" }],
    revisitReasons: [RevisitReason.UNSTABLE_MOOD],
    campaignId: campaign?.id,
    answers: question === undefined ? [] : [{ question: question.code, value: question.scale }],
    position: { latitude: 28.194012, longitude: 112.976033, accuracyMeters: 12, fixedAt },
  });
  const push = create(PushRequestSchema, { changes: [change], cursor });
  const first = await sync.push(push);
  clock.observeServer(first.serverHlc);
  // The same push again, as after a lost answer: the server must count it
  // as a duplicate and apply nothing.
  const retry = await sync.push(push);
  clock.observeServer(retry.serverHlc);
  const secondPull = await pull();

  return {
    case: name,
    protocol: c.protocol,
    format: c.format,
    deviceId: enrolled.deviceId,
    workerId,
    replicaId,
    node: clock.node.toString(),
    householdId,
    households: households.size,
    householdIds: [...households].sort(),
    totalHouseholds: total,
    bootstrapMessages: messages,
    campaigns: campaigns.map((k) => ({
      id: k.id,
      startsAtMillis: (k.startsAt?.value ?? 0n).toString(),
      endsAtMillis: (k.endsAt?.value ?? 0n).toString(),
      questions: k.questionnaire?.questions.map((q) => q.code) ?? [],
    })),
    firstPull: { batches: firstPull.batches, households: firstPull.households, visits: firstPull.visits.length },
    changeId: change.id,
    visitId: visit.id,
    visit: {
      hlc: (visit.clock?.hlc ?? 0n).toString(),
      node: (visit.clock?.node ?? 0n).toString(),
      visitedAtMillis: visit.visitedAt === undefined ? 0 : timestampMs(visit.visitedAt),
      positionFixedAtMillis: fixedAt.getTime(),
      notes: visit.notes,
      campaignId: visit.campaignId,
      answers: visit.answers.map((a) => ({ question: a.question, value: a.value })),
    },
    pushed: { applied: first.applied, duplicates: first.duplicates },
    retried: { applied: retry.applied, duplicates: retry.duplicates },
    secondPull: {
      batches: secondPull.batches,
      households: secondPull.households,
      ownVisitPulled: secondPull.visits.includes(visit.id),
    },
    cursor: cursor.toString(),
    clockAfter: clock.peek().toString(),
  };
}

async function main(): Promise<number> {
  const path = process.argv[2];
  if (path === undefined) {
    process.stderr.write("usage: node dist/test/interop.js CONFIG.json\n");
    return 2;
  }
  const config = JSON.parse(readFileSync(path, "utf8")) as Config;
  let failed = 0;
  for (const c of config.cases) {
    const name = `${c.protocol}/${c.format}`;
    try {
      process.stdout.write(JSON.stringify(await run(config.server, c)) + "\n");
    } catch (err) {
      failed++;
      process.stdout.write(JSON.stringify({ case: name, error: String(err) }) + "\n");
    }
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
