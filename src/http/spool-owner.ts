/**
 * Who owns a spool folder, and whether that owner is surely gone. Each gateway writes an owner marker beside
 * its spool folder (http/spool.ts); a starting gateway removes a sibling's folder only when the marker proves
 * its process dead. Any doubt (another host or PID namespace sharing the temp folder, an unreadable /proc, a
 * marker that does not parse) keeps the folder: a leaked folder costs disk, a wrongly removed one loses a live
 * gateway's uploads.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

export interface SpoolOwner {
  pid: number;
  /** The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): a reused PID differs here. */
  start: string | null;
  host: string;
  /** The PID namespace (/proc/self/ns/pid): PIDs from another namespace say nothing here. */
  pidns: string | null;
  /** /proc/sys/kernel/random/boot_id: a marker from an earlier boot has a dead owner whatever its PID. */
  boot: string | null;
}

const quiet = <T>(read: () => T): T | null => {
  try {
    return read();
  } catch {
    return null;
  }
};

/** A process's start time from /proc/<pid>/stat (throws where it cannot be read); null if the line has none. */
function readStart(pid: number): string | null {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  return start !== undefined && /^\d{1,20}$/.test(start) ? start : null;
}

/** A process's start time; null where /proc is missing or the process is gone. */
export function processStart(pid: number): string | null {
  return quiet(() => readStart(pid));
}

/** This process as a spool folder's owner. */
export function currentOwner(): SpoolOwner {
  return {
    pid: process.pid,
    start: processStart(process.pid),
    host: hostname(),
    pidns: quiet(() => readlinkSync('/proc/self/ns/pid')),
    boot: quiet(() => readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim()),
  };
}

const nullableString = (v: unknown) => v === null || (typeof v === 'string' && v.length <= 200);

/** A marker's text as an owner, or undefined when it is not one (then the folder is left alone). */
export function parseOwner(text: string): SpoolOwner | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (!Number.isSafeInteger(o.pid) || (o.pid as number) <= 0) return undefined;
  if (typeof o.host !== 'string' || ![o.start, o.pidns, o.boot].every(nullableString)) return undefined;
  return { pid: o.pid as number, start: o.start as string | null, host: o.host, pidns: o.pidns as string | null, boot: o.boot as string | null };
}

/** Whether `owner`'s process has surely ended, judged from `here` (this process). */
export function ownerGone(owner: SpoolOwner, here: SpoolOwner = currentOwner()): boolean {
  // Another machine or container sharing the temp folder: its processes cannot be seen from here.
  if (owner.host !== here.host || owner.pidns !== here.pidns) return false;
  if (owner.boot !== null && here.boot !== null && owner.boot !== here.boot) return true;
  if (owner.start !== null && here.start !== null) {
    // Where /proc answers for us it answers for the owner (same user) too: no stat file, no such process.
    try {
      const start = readStart(owner.pid);
      return start !== null && start !== owner.start;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ENOENT';
    }
  }
  try {
    process.kill(owner.pid, 0);
    return false; // a process with that PID runs (perhaps a reused PID: without /proc we cannot tell; keep it)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
