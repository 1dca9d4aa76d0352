// Changes as the Go SDK builds them (client-sdk/writes.go): one clock per
// write, shared by every field it sets; a fresh id per record and per
// change; times to the millisecond. The server validates every change
// (proto/doorbook/v1/types.proto, syncengine/validate.go) and names the one
// it refuses, so these helpers get the shape right and leave the rules to it.

import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  BoolFieldSchema,
  type Change,
  ChangeSchema,
  type Clock,
  type FindingKind,
  FindingSchema,
  type Household,
  HouseholdSchema,
  Int64FieldSchema,
  type Material,
  PositionSchema,
  type RevisitReason,
  StringFieldSchema,
  SurveyAnswerSchema,
  type TagElement,
  TagElementSchema,
  type Visit,
  type VisitForm,
  VisitSchema,
} from "./gen/doorbook/v1/types_pb.js";
import { hlcMillis, type HybridClock } from "./hlc.js";

/** When a follow-up is due if a visit that opens one sets no date. */
export const DEFAULT_REVISIT_DAYS = 7;

const DAY_MILLIS = 24 * 60 * 60 * 1000;

/**
 * A new UUIDv7: the ids of records (households, visits, tag adds) and of
 * changes. Any UUID is accepted; v7 ids are time-ordered, so the server
 * and the replicas insert them in key order.
 */
export function newID(nowMillis: number = Date.now()): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  let ms = BigInt(Math.max(0, Math.trunc(nowMillis)));
  for (let i = 5; i >= 0; i--) {
    b[i] = Number(ms & 0xffn);
    ms >>= 8n;
  }
  b[6] = (b[6] & 0x0f) | 0x70; // version 7
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A change of one record, with a change id of its own. */
export function changeOf(payload: Change["payload"]): Change {
  return create(ChangeSchema, { id: newID(), payload });
}

/** What to record of a visit (the Go SDK's sdk.VisitInput). */
export interface VisitInput {
  /** One household for in-person and phone visits; several for the group forms. */
  householdIds: string[];
  form: VisitForm;
  notes?: string;
  /** When the visit was made; the clock's time if unset. */
  visitedAt?: Date;
  materials?: Material[];
  findings?: { kind: FindingKind; note?: string }[];
  /** Open a follow-up, due by revisitDue (DEFAULT_REVISIT_DAYS after the visit if unset). */
  revisitReasons?: RevisitReason[];
  revisitDue?: Date;
  /** The campaign whose questionnaire answers follows. */
  campaignId?: string;
  answers?: { question: string; value: number }[];
  /** The phone's fix, only when it has one: never required, never made up. */
  position?: { latitude: number; longitude: number; accuracyMeters?: number; fixedAt: Date };
}

/**
 * A visit by visitorId (the worker of the enrolled device: the server
 * refuses visits of anyone else), stamped by clock. Visits are immutable:
 * a correction is a VisitAmendment, never a second visit with the same id.
 */
export function newVisit(clock: HybridClock, visitorId: string, input: VisitInput): { change: Change; visit: Visit } {
  const c = clock.now();
  const at = input.visitedAt?.getTime() ?? hlcMillis(c.hlc);
  let due = input.revisitDue?.getTime();
  if (due === undefined && (input.revisitReasons?.length ?? 0) > 0) {
    due = at + DEFAULT_REVISIT_DAYS * DAY_MILLIS;
  }
  const visit = create(VisitSchema, {
    id: newID(),
    householdIds: input.householdIds,
    visitorId,
    visitedAt: timestampFromMs(at),
    form: input.form,
    notes: input.notes ?? "",
    clock: c,
    materials: input.materials ?? [],
    findings: (input.findings ?? []).map((f) => create(FindingSchema, { kind: f.kind, note: f.note ?? "" })),
    revisitReasons: input.revisitReasons ?? [],
    revisitDue: due === undefined ? undefined : timestampFromMs(due),
    campaignId: input.campaignId ?? "",
    answers: (input.answers ?? []).map((a) => create(SurveyAnswerSchema, a)),
    position:
      input.position === undefined
        ? undefined
        : create(PositionSchema, {
            latitude: input.position.latitude,
            longitude: input.position.longitude,
            accuracyMeters: input.position.accuracyMeters ?? 0,
            fixedAt: timestampFromMs(input.position.fixedAt.getTime()),
          }),
  });
  return { change: changeOf({ case: "visit", value: visit }), visit };
}

/**
 * The household fields by their API names, as the Go SDK's
 * syncengine.HouseholdFieldNames; member_count holds a whole number,
 * written as text here as there.
 */
export const HOUSEHOLD_FIELDS = {
  head_name: "headName",
  address: "address",
  phone_mobile: "phoneMobile",
  phone_landline: "phoneLandline",
  responsible_worker: "responsibleWorker",
  responsible_leader: "responsibleLeader",
  responsible_unit: "responsibleUnit",
  member_count: "memberCount",
  housing_type: "housingType",
  notes: "notes",
} as const;

export type HouseholdFieldName = keyof typeof HOUSEHOLD_FIELDS;

function householdDelta(id: string, c: Clock, fields: Partial<Record<HouseholdFieldName, string>>): Household {
  const h = create(HouseholdSchema, { id });
  for (const [name, text] of Object.entries(fields)) {
    if (text === undefined) {
      continue;
    }
    const key = HOUSEHOLD_FIELDS[name as HouseholdFieldName];
    if (key === undefined) {
      throw new Error(`unknown household field ${JSON.stringify(name)}`);
    }
    if (key === "memberCount") {
      if (!/^\s*-?\d+\s*$/.test(text)) {
        throw new Error(`member_count must be a whole number, got ${JSON.stringify(text)}`);
      }
      h.memberCount = create(Int64FieldSchema, { value: BigInt(text.trim()), clock: c });
    } else {
      h[key] = create(StringFieldSchema, { value: text, clock: c });
    }
  }
  return h;
}

/**
 * A new household in one of the worker's grids: a delta whose every field,
 * grid_id included, carries the same new clock.
 */
export function registerHousehold(
  clock: HybridClock,
  gridId: string,
  fields: Partial<Record<HouseholdFieldName, string>>,
): { change: Change; household: Household } {
  const c = clock.now();
  const household = householdDelta(newID(), c, fields);
  household.gridId = create(StringFieldSchema, { value: gridId, clock: c });
  return { change: changeOf({ case: "household", value: household }), household };
}

/**
 * An edit of some fields of a household: only those fields, each with the
 * new clock. A field left out is not written, so a co-worker's concurrent
 * edit of another field survives the merge.
 */
export function editHousehold(
  clock: HybridClock,
  householdId: string,
  fields: Partial<Record<HouseholdFieldName, string>>,
): Change {
  return changeOf({ case: "household", value: householdDelta(householdId, clock.now(), fields) });
}

/** Marks a household deleted: a tombstone register with its own clock. */
export function deleteHousehold(clock: HybridClock, householdId: string): Change {
  const h = create(HouseholdSchema, { id: householdId });
  h.deleted = create(BoolFieldSchema, { value: true, clock: clock.now() });
  return changeOf({ case: "household", value: h });
}

/**
 * Puts a category on a household: always a new add (a fresh add_id), even
 * when the household shows the category already, so that it wins over a
 * co-worker's concurrent remove of the adds they had seen.
 */
export function addTag(clock: HybridClock, householdId: string, category: string): Change {
  return changeOf({
    case: "tag",
    value: create(TagElementSchema, { addId: newID(), householdId, categoryCode: category, clock: clock.now() }),
  });
}

/**
 * Takes a category off a household: a change per add of it among the
 * elements this replica holds, marked removed and keeping the add's clock
 * (removed only ever goes from false to true). An add it has not seen
 * stays on.
 */
export function removeTag(elements: TagElement[], householdId: string, category: string): Change[] {
  return elements
    .filter((e) => e.householdId === householdId && e.categoryCode === category && !e.removed)
    .map((e) =>
      changeOf({
        case: "tag",
        value: create(TagElementSchema, {
          addId: e.addId,
          householdId: e.householdId,
          categoryCode: e.categoryCode,
          removed: true,
          clock: e.clock,
        }),
      }),
    );
}
