// The hybrid logical clock, as syncengine/clock.go builds it: a client that
// stamps its writes any other way loses merges it should win, or wins
// every merge forever (docs/wire.md, "The clock").

import { create } from "@bufbuild/protobuf";
import { type Clock, ClockSchema } from "./gen/doorbook/v1/types_pb.js";

/** The width of the logical counter in an HLC value: its low 16 bits. */
export const LOGICAL_BITS = 16n;

const LOGICAL_MASK = (1n << LOGICAL_BITS) - 1n;
const UINT64_MASK = (1n << 64n) - 1n;

/** An HLC value from wall-clock milliseconds and a counter. */
export function packHLC(unixMillis: number | bigint, logical = 0): bigint {
  let ms = BigInt(unixMillis);
  if (ms < 0n) {
    ms = 0n;
  }
  return (ms << LOGICAL_BITS) | (BigInt(logical) & LOGICAL_MASK);
}

/** The wall-clock milliseconds an HLC value carries. */
export function hlcMillis(hlc: bigint): number {
  return Number(hlc >> LOGICAL_BITS);
}

/** The logical counter of an HLC value. */
export function hlcLogical(hlc: bigint): number {
  return Number(hlc & LOGICAL_MASK);
}

/** The wall-clock time an HLC value carries. */
export function hlcDate(hlc: bigint): Date {
  return new Date(hlcMillis(hlc));
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;

/**
 * The tie-breaking node of a replica: FNV-1a (64 bits) of its id's UTF-8
 * bytes, as syncengine.NodeID. Any 64-bit value the replica keeps for
 * life would order merges as well; this one matches the Go SDK's, so a
 * replica id means the same node in both.
 */
export function nodeID(replicaID: string): bigint {
  let h = FNV_OFFSET;
  for (const b of new TextEncoder().encode(replicaID)) {
    h ^= BigInt(b);
    h = (h * FNV_PRIME) & UINT64_MASK;
  }
  return h;
}

/** -1, 0 or +1 as a is older than, equal to or newer than b: the HLC, then the node. */
export function compareClocks(a: Clock, b: Clock): number {
  if (a.hlc !== b.hlc) {
    return a.hlc < b.hlc ? -1 : 1;
  }
  if (a.node !== b.node) {
    return a.node < b.node ? -1 : 1;
  }
  return 0;
}

/** A Clock message of an HLC value and a node. */
export function clockOf(hlc: bigint, node: bigint): Clock {
  return create(ClockSchema, { hlc, node });
}

/**
 * HybridClock issues Clocks for one replica: never below its wall clock
 * (shifted by the offset learned from the server), never below any value it
 * has observed, and strictly increasing. Persist peek() with every write
 * and start the next session from it: a clock that restarts lower can
 * issue a reading twice, and two different values under one clock merge by
 * value, not by time.
 */
export class HybridClock {
  readonly node: bigint;
  private last: bigint;
  private offset = 0;
  private readonly wall: () => number;

  /**
   * node: nodeID(replicaID); last: the newest value issued or observed
   * (persisted), 0n for a new replica; wall: milliseconds since the epoch
   * (Date.now by default).
   */
  constructor(node: bigint, last = 0n, wall: () => number = Date.now) {
    this.node = node;
    this.last = last;
    this.wall = wall;
  }

  /** A new reading, newer than every reading before it. */
  now(): Clock {
    const wall = packHLC(this.wall() + this.offset, 0);
    // The counter carries into the milliseconds when it overflows, which
    // keeps readings unique, as in syncengine's nextHLC.
    this.last = wall > this.last ? wall : this.last + 1n;
    return clockOf(this.last, this.node);
  }

  /** The newest value issued or observed, without ticking: what to persist. */
  peek(): bigint {
    return this.last;
  }

  /**
   * Moves the clock past a value read elsewhere (a row pulled), so that
   * later local writes win over what this replica has seen.
   */
  observe(hlc: bigint): void {
    if (hlc > this.last) {
      this.last = hlc;
    }
  }

  /**
   * Takes the server's clock from any answer's server_hlc: the wall-clock
   * offset becomes the server's time less this device's (a phone whose
   * clock is wrong stamps its next writes with the server's time), and the
   * clock moves past it. 0n (no clock in the answer) changes nothing.
   */
  observeServer(serverHlc: bigint): void {
    if (serverHlc === 0n) {
      return;
    }
    this.offset = hlcMillis(serverHlc) - this.wall();
    this.observe(serverHlc);
  }

  /**
   * Sets the clock back to a value: only after a ClockSkew refusal, to
   * re-stamp unsent changes that no one else has seen (docs/wire.md).
   */
  reset(hlc: bigint): void {
    this.last = hlc;
  }

  /** The wall-clock shift in milliseconds, learned by observeServer. */
  get offsetMillis(): number {
    return this.offset;
  }

  set offsetMillis(ms: number) {
    this.offset = ms;
  }
}
