// The details the server puts on its errors (server/errors.go,
// server/sync.go, server/devices.go), read the way a client must act on
// them: docs/wire.md, "Errors".

import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  type ClockSkew,
  ClockSkewSchema,
  CursorExpiredSchema,
  type DeviceRevoked,
  DeviceRevokedSchema,
  type RejectedChange,
  RejectedChangeSchema,
} from "./gen/doorbook/v1/sync_pb.js";

/**
 * An interceptor that sends the device's token (EnrollResponse.token) with
 * every call: every service but enrolment needs it.
 */
export function bearer(token: string): Interceptor {
  return (next) => async (req) => {
    req.header.set("Authorization", `Bearer ${token}`);
    return next(req);
  };
}

function detail<T>(err: unknown, find: (e: ConnectError) => T[]): T | undefined {
  const ce = ConnectError.from(err);
  return find(ce)[0];
}

/**
 * A push refused because a clock ran too far ahead of the server's
 * (FailedPrecondition): move the clock to server_hlc, re-stamp the unsent
 * changes and push again.
 */
export function clockSkewOf(err: unknown): ClockSkew | undefined {
  return detail(err, (e) => e.findDetails(ClockSkewSchema));
}

/**
 * A push refused because of one change that can never be applied: set it
 * aside, tell the user, push the rest. Nothing of the push was applied.
 */
export function rejectedChangeOf(err: unknown): RejectedChange | undefined {
  return detail(err, (e) => e.findDetails(RejectedChangeSchema));
}

/**
 * A pull whose cursor is older than the server's collection horizon
 * (FailedPrecondition): start over from a bootstrap, keeping unsent changes.
 */
export function isCursorExpired(err: unknown): boolean {
  return detail(err, (e) => e.findDetails(CursorExpiredSchema)) !== undefined;
}

/**
 * A revoked device (Unauthenticated): wipe the replica's data and tell the
 * user why.
 */
export function deviceRevokedOf(err: unknown): DeviceRevoked | undefined {
  const ce = ConnectError.from(err);
  return ce.code === Code.Unauthenticated ? ce.findDetails(DeviceRevokedSchema)[0] : undefined;
}
