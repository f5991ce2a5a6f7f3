/**
 * The queue: Postfix-format queue files, durable commits, queue IDs.
 *
 * @module
 */

export { QueueFile, QueueWriteError, READY_MODE } from "./queue_writer.ts";
export { QueueStore } from "./queue_store.ts";
export type {
  CommitOptions,
  EnvelopeRecords,
  ExtractedRecords,
  QueueName,
  QueueRecipient,
} from "./queue_writer.ts";
export {
  decodeRecords,
  formatSize,
  QueueFileError,
  REC,
  RecordBuffer,
  RecordBufferPool,
} from "./queue_file.ts";
export type { QueueRecord, SizeFields } from "./queue_file.ts";
export { isQueueId, makeQueueId, QueueIds } from "./queue_id.ts";
export { DirSyncer } from "./dir_sync.ts";
export { PoolLock } from "./file_pool.ts";
export { removeLeftUnfinished, SharedFileList } from "./shared_file_list.ts";
export { listOurFiles, recoverQueue } from "./recover.ts";
export type { OurFile, Recovered, RecoverOptions } from "./recover.ts";
export { findQueueFile, listQueue, QueueReadError, QUEUES, readQueueFile } from "./queue_reader.ts";
export type { QueueEntry } from "./queue_reader.ts";
