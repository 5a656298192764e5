import { mkdir, open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { isPackageError, StoreError } from '../errors.js'
import { optionKeys, refuseUnknownKeys } from '../options/option-keys.js'
import type { LogOptions } from './revocation-log.js'
import { inMemoryLimits, StateBackedStore, type CommittedWrite } from './state-backed.js'
import type { StoreOperation } from './state.js'
import type { LogEntry } from './types.js'

export interface FileStoreOptions extends LogOptions {
  /** Directory for the log and its lock; created if missing. One process writes it at a time. */
  path: string
  /** Most live entries (see MemoryStore). Default 1,000,000; at most 16,777,216 (2^24). */
  maxEntries?: number
  /** Every this many writes, expired entries are purged, and the log rewritten once this many of its lines are dead. Default 10,000. */
  compactAfter?: number
}

const fileOptionKeys = optionKeys<FileStoreOptions>({ path: true, maxEntries: true, compactAfter: true, logRetention: true, logMaxEntries: true })

/**
 * One line of the file. A write is one line holding its operations and its log entry,
 * so a crash keeps both or neither. Lines of one bare operation are what versions
 * without the log wrote (still read); a compaction writes the live state as bare
 * operations, then the floor of the log and its kept entries.
 */
type FileRecord =
  | StoreOperation
  | { op: 'write', operations: StoreOperation[], entry: LogEntry }
  | { op: 'log', entry: LogEntry }
  | { op: 'logFloor', id: number }

const LOG = 'revocations.log'
const LOCK = 'lock'

/** Whether a process runs under `pid` (one of another user's counts). */
export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The embedded default for one machine: an append-only JSON-lines log replayed into
 * memory at start. A write is acknowledged only after `fdatasync`, so `kill -9` (or a
 * power cut, on a disk that honours fsync) right after loses nothing. A torn last
 * line is dropped; expired entries are compacted away by rewriting the log atomically.
 */
export class FileStore extends StateBackedStore {
  readonly path: string
  private readonly logPath: string
  private readonly lockPath: string
  private readonly compactAfter: number
  private log: FileHandle | null = null
  private lines = 0
  private writesSincePurge = 0
  private opening: Promise<void> | null = null
  private closed = false

  constructor (options: FileStoreOptions) {
    if (typeof options?.path !== 'string' || options.path.length === 0) throw new TypeError('FileStore: path must be a directory path')
    refuseUnknownKeys(options, fileOptionKeys, 'FileStore')
    const { maxEntries, log } = inMemoryLimits(options, 'FileStore')
    super(maxEntries, log)
    this.path = resolve(options.path)
    this.logPath = join(this.path, LOG)
    this.lockPath = join(this.path, LOCK)
    this.compactAfter = options.compactAfter ?? 10_000
  }

  protected override get loaded (): boolean {
    return this.log !== null && !this.closed
  }

  override ready (): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError(`FileStore ${this.path} is closed`))
    this.opening ??= this.open()
    return this.opening
  }

  /**
   * Runs a file-system step; its failure (EACCES, EROFS, ENOSPC, …) becomes a StoreError
   * naming the store's directory, the step and the cause, with the original as `cause`.
   */
  private async fs<T> (step: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      if (isPackageError(err)) throw err
      const e = err as NodeJS.ErrnoException
      const wrapped = new StoreError(`FileStore ${this.path}: cannot ${step} (${e.code ?? 'error'}: ${e.message})`)
      wrapped.cause = err
      throw wrapped
    }
  }

  private async open (): Promise<void> {
    await this.fs('create the directory', () => mkdir(this.path, { recursive: true }))
    await this.fs('take the lock', () => this.lock())
    try {
      await this.fs('read the log', () => this.replay())
      this.log = await this.fs('open the log for writing', () => open(this.logPath, 'a'))
      if (this.state.purgeExpired(Date.now()) > 0) await this.fs('compact the log', () => this.compact())
    } catch (err) {
      await unlink(this.lockPath).catch(() => {})
      throw err
    }
  }

  private async lock (): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(this.lockPath, 'wx')
        await handle.writeFile(String(process.pid))
        await handle.close()
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const owner = Number.parseInt(await readFile(this.lockPath, 'utf8').catch(() => ''), 10)
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
        throw new StoreError(`FileStore ${this.path} is locked by process ${owner}${owner === process.pid ? ' (this process: another FileStore has it open)' : ''}; one process may write it at a time`)
      }
      // The owner died without closing: its lock is stale.
      await unlink(this.lockPath).catch(() => {})
    }
    throw new StoreError(`FileStore ${this.path}: could not take the lock`)
  }

  private async replay (): Promise<void> {
    let text: string
    try {
      text = await readFile(this.logPath, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    let offset = 0
    let lineNo = 0
    while (offset < text.length) {
      const end = text.indexOf('\n', offset)
      lineNo++
      if (end === -1) {
        // A write cut short by a crash: it was never acknowledged, so dropping it loses nothing.
        await this.truncateTo(Buffer.byteLength(text.slice(0, offset)))
        break
      }
      const line = text.slice(offset, end)
      offset = end + 1
      if (line === '') continue
      let record: FileRecord
      try {
        record = JSON.parse(line) as FileRecord
      } catch {
        throw new StoreError(`FileStore ${this.logPath}: line ${lineNo} is corrupt; refusing to start rather than forget revocations`)
      }
      this.lines += this.replayRecord(record)
    }
  }

  /** Applies one line read back; returns how many entries (operations and log entries) it holds. */
  private replayRecord (record: FileRecord): number {
    const now = Date.now()
    switch (record.op) {
      case 'write':
        for (const operation of record.operations) this.state.apply(operation)
        this.changeLog.append(record.entry, now)
        return record.operations.length + 1
      case 'log':
        this.changeLog.append(record.entry, now)
        return 1
      case 'logFloor':
        this.changeLog.restoreFloor(record.id)
        return 1
      default:
        this.state.apply(record)
        return 1
    }
  }

  private async truncateTo (bytes: number): Promise<void> {
    const handle = await open(this.logPath, 'r+')
    try {
      await handle.truncate(bytes)
      await handle.datasync()
    } finally {
      await handle.close()
    }
  }

  /** One append and one fsync for a whole batch: the group commit that makes concurrent writes cheap. */
  protected async commit (writes: CommittedWrite[]): Promise<void> {
    const log = this.log
    if (log === null) throw new StoreError(`FileStore ${this.path} is closed`)
    let text = ''
    let entries = 0
    for (const { operations, entry } of writes) {
      const record: FileRecord = { op: 'write', operations, entry }
      text += JSON.stringify(record) + '\n'
      entries += operations.length + 1
    }
    await this.fs('write the log', async () => {
      await log.write(text)
      await log.datasync()
    })
    this.lines += entries
    this.writesSincePurge += entries
    if (this.writesSincePurge >= this.compactAfter) await this.compactIfWorthIt()
  }

  /** Every `compactAfter` writes: forget expired entries, and rewrite the log once that many of its lines are dead. */
  private async compactIfWorthIt (): Promise<void> {
    this.writesSincePurge = 0
    this.state.purgeExpired(Date.now())
    if (this.lines - this.state.size - this.changeLog.size - 1 < this.compactAfter) return
    // Runs after the operation is durable; compaction failing must not fail the write.
    try {
      await this.compact()
    } catch {
      // The old log is intact: compaction is retried after the next writes.
    }
  }

  /** Rewrites the log as the live entries only: write a new file, fsync it, rename it over the old one. */
  private async compact (): Promise<void> {
    const tmp = this.logPath + '.tmp'
    const handle = await open(tmp, 'w')
    let lines = 0
    try {
      let chunk = ''
      for (const record of this.compacted()) {
        chunk += JSON.stringify(record) + '\n'
        lines++
        if (chunk.length > 1 << 20) {
          await handle.write(chunk)
          chunk = ''
        }
      }
      await handle.write(chunk)
      await handle.datasync()
    } finally {
      await handle.close()
    }
    await rename(tmp, this.logPath)
    const dir = await open(this.path, 'r')
    await dir.sync().finally(() => dir.close())
    await this.log?.close()
    this.log = await open(this.logPath, 'a')
    this.lines = lines
  }

  /** What a compaction keeps: the live state, then the log's floor and its kept entries (trimmed first). */
  private * compacted (): Generator<FileRecord> {
    const now = Date.now()
    yield * this.state.snapshot(now)
    this.changeLog.trim(now)
    yield { op: 'logFloor', id: this.changeLog.floor }
    for (const entry of this.changeLog.kept()) yield { op: 'log', entry }
  }

  override async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.opening?.catch(() => {})
    await this.idle()
    if (this.log !== null) {
      await this.log.close()
      this.log = null
      await unlink(this.lockPath).catch(() => {})
    }
  }
}
