/**
 * Spool folders left by dead gateways. A gateway killed without closing (SIGKILL, the OOM killer, a power cut)
 * leaves its spool folder, and any half-written upload in it, in the shared temp folder. So every gateway of a
 * user keeps its spool folder under one parent, `kernelgate-spools-<uid>` (0700, ours, not a symlink), named
 * `<pid>-<random>` beside an owner marker `<pid>-<random>.owner` (http/spool-owner.ts), and a starting gateway
 * removes the folders whose marker proves the owner dead. Nothing else is touched: not a folder without a
 * marker, not a symlink, not an entry another user owns, not a live (or possibly live) gateway's folder.
 */
import { chmodSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { lstat, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ownerGone, parseOwner, type SpoolOwner } from './spool-owner.js';

/** A spool folder's name under the parent: the owner's PID and 16 random hex digits. */
export const SPOOL_NAME = /^\d{1,10}-[0-9a-f]{16}$/;
export const MARKER_SUFFIX = '.owner';

/** The user's spool parent under `base`, made 0700 if missing; refused (with why) unless safely ours. */
export function openSpoolParent(base: string): { path: string } | { path: string; refused: string } {
  const uid = process.getuid?.();
  const path = join(base, `kernelgate-spools-${uid ?? 'nouid'}`);
  if (uid === undefined) return { path, refused: 'this platform has no user ids to check ownership by' };
  try {
    mkdirSync(path, { mode: 0o700 });
    chmodSync(path, 0o700); // the umask may have taken bits away; it never adds any
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return { path, refused: `it cannot be made (${(error as NodeJS.ErrnoException).code})` };
  }
  // lstat: a symlink planted at this name by anyone with write access to the temp folder is never followed.
  let st;
  try {
    st = lstatSync(path);
  } catch (error) {
    return { path, refused: `it cannot be examined (${(error as NodeJS.ErrnoException).code})` };
  }
  if (st.isSymbolicLink()) return { path, refused: 'it is a symlink' };
  if (!st.isDirectory()) return { path, refused: 'it is not a folder' };
  if (st.uid !== uid) return { path, refused: `it belongs to uid ${st.uid}` };
  if ((st.mode & 0o777) !== 0o700) return { path, refused: `its mode is ${(st.mode & 0o777).toString(8)}, not 700` };
  return { path };
}

/** At most this much of a marker is read (a marker is about 150 bytes). */
const MARKER_MAX = 1024;

/** The marker's owner, read without following a symlink, only from a regular file of ours; else undefined. */
function readMarker(path: string, uid: number): SpoolOwner | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== uid) return undefined;
    const buf = Buffer.alloc(MARKER_MAX);
    const n = readSync(fd, buf, 0, MARKER_MAX, 0);
    return parseOwner(buf.subarray(0, n).toString('utf8'));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Bytes held by the files directly in a spool folder (spool files are never nested). */
async function folderBytes(path: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(path)) {
    const st = await lstat(join(path, name)).catch(() => undefined);
    if (st?.isFile()) bytes += st.size;
  }
  return bytes;
}

export interface SweepResult {
  /** Dead gateways' spool folders removed, and the bytes their files held. */
  folders: number;
  bytes: number;
}

/**
 * Removes the spool folders under `parent` (checked by openSpoolParent) whose owners are surely gone, with
 * their markers. Never throws: an entry that cannot be judged or removed is left as it is.
 */
export async function sweepSpools(parent: string, here: SpoolOwner): Promise<SweepResult> {
  const uid = process.getuid?.();
  const result: SweepResult = { folders: 0, bytes: 0 };
  if (uid === undefined) return result;
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const markerName of names) {
    if (!markerName.endsWith(MARKER_SUFFIX)) continue;
    const name = markerName.slice(0, -MARKER_SUFFIX.length);
    if (!SPOOL_NAME.test(name)) continue;
    const marker = join(parent, markerName);
    const owner = readMarker(marker, uid);
    if (owner === undefined || !ownerGone(owner, here)) continue;
    try {
      const folder = join(parent, name);
      const st = await lstat(folder).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined; // a marker whose folder was never made or already went
        throw error;
      });
      if (st !== undefined) {
        if (!st.isDirectory() || st.uid !== uid) continue; // not a spool folder of ours: leave it and its marker
        const bytes = await folderBytes(folder);
        // rm does not follow symlinks inside the folder; the parent is ours alone, so nobody swaps the folder.
        await rm(folder, { recursive: true, force: true });
        result.folders++;
        result.bytes += bytes;
      }
      await unlink(marker);
    } catch {
      // Another starting gateway may be removing the same folder; what is left goes at the next start.
    }
  }
  return result;
}

/** The start-up sweep with its log lines: counts and sizes only, never a file's name or contents. */
export async function sweepAtStart(spool: { parent: string; refused?: string }, here: SpoolOwner, log: Logger): Promise<void> {
  if (spool.refused !== undefined) {
    log.warn(
      { folder: spool.parent, reason: spool.refused },
      'spool parent folder refused: spooling in a private folder of this gateway instead; folders left by killed gateways are not removed',
    );
    return;
  }
  const swept = await sweepSpools(spool.parent, here);
  if (swept.folders > 0) log.info({ folders: swept.folders, bytes: swept.bytes }, 'removed spool folders left by gateways that are gone');
}
