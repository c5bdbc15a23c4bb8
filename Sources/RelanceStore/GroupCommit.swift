import Foundation
import GRDB
import Synchronization

/// Runs concurrent small writes in shared transactions: whoever finds no flush running becomes the
/// flusher and commits every queued write in one transaction, until the queue is empty. Callers
/// resume only after the transaction holding their write has committed.
///
/// One failing write must not undo its neighbours. A write fails rarely (a race the status machine
/// refuses), so a batch first runs its writes one after the other without savepoints; if one
/// throws, the whole transaction is rolled back and the batch runs again, each write in its own
/// savepoint. The writes are `@Sendable` closures of the database alone, so running one again is
/// running it once. (A savepoint around every write was two more statements each, in the one
/// writer that bounds a pass.)
final class GroupCommit: Sendable {
    private struct Job: @unchecked Sendable {
        // @unchecked: `runIsolated` and `tryRun` are only ever called on GRDB's writer queue, by the flusher.
        /// Runs the write inside the open transaction, in a savepoint of its own (rolled back if it
        /// throws); returns what to do once the commit is known.
        let runIsolated: (Database) -> @Sendable ((any Error)?) -> Void
        /// Runs the write inside the open transaction and throws its error, if any: the batch is
        /// then run again, isolated.
        let tryRun: (Database) throws -> @Sendable ((any Error)?) -> Void
        /// Resumes the caller with an error without running the write.
        let abort: (any Error) -> Void
    }

    private struct State {
        var queue: [Job] = []
        var flushing = false
    }

    private let pool: DatabasePool
    private let state = Mutex(State())

    init(pool: DatabasePool) { self.pool = pool }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            func completion(_ result: Result<T, any Error>) -> @Sendable ((any Error)?) -> Void {
                { commitError in
                    if let commitError { continuation.resume(throwing: commitError) } else { continuation.resume(with: result) }
                }
            }
            let job = Job(
                runIsolated: { db in
                    let result: Result<T, any Error>
                    do {
                        result = .success(try Self.inSavepoint(db) { try body(db) })
                    } catch {
                        result = .failure(error)
                    }
                    return completion(result)
                },
                tryRun: { db in completion(.success(try body(db))) },
                abort: { continuation.resume(throwing: $0) })
            let becomeFlusher = state.withLock { state -> Bool in
                state.queue.append(job)
                if state.flushing { return false }
                state.flushing = true
                return true
            }
            if becomeFlusher { flush() }
        }
    }

    /// Runs `body` in a savepoint of the open transaction, rolled back if it throws (a batch run
    /// again after a write threw). The savepoint statements come from the connection's statement
    /// cache (`Database.inSavepoint` prepares them for every write, and a batch holds hundreds)
    /// and run through SQLite's C API, as the writes of the send path do.
    private static func inSavepoint<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        try db.runDirect(sql: "SAVEPOINT relance_write", [])
        do {
            let value = try body()
            try db.runDirect(sql: "RELEASE SAVEPOINT relance_write", [])
            return value
        } catch {
            // Undoes this write only; if the transaction itself is gone, its COMMIT reports it.
            try? db.run(sql: "ROLLBACK TO SAVEPOINT relance_write")
            try? db.run(sql: "RELEASE SAVEPOINT relance_write")
            throw error
        }
    }

    /// Drains the queue on GRDB's writer queue (asynchronously, off the cooperative pool).
    private func flush() {
        pool.asyncWriteWithoutTransaction { db in
            while true {
                let jobs = self.state.withLock { state -> [Job] in
                    let jobs = state.queue
                    state.queue.removeAll()
                    if jobs.isEmpty { state.flushing = false }
                    return jobs
                }
                if jobs.isEmpty { return }
                Self.commit(jobs, db)
            }
        }
    }

    /// Commits a batch: without savepoints first; when a write throws, rolled back and run again
    /// with each write in its own savepoint.
    private static func commit(_ jobs: [Job], _ db: Database) {
        var completions: [@Sendable ((any Error)?) -> Void] = []
        do {
            try db.inTransaction {
                completions = try jobs.map { try $0.tryRun(db) }
                return .commit
            }
            for complete in completions { complete(nil) }
            return
        } catch let error where completions.count == jobs.count {
            // Every write ran: the COMMIT itself failed.
            for complete in completions { complete(error) }
            return
        } catch {
            // A write threw (or BEGIN failed): nothing of the batch is left; run it again, isolated.
        }
        completions = []
        do {
            try db.inTransaction {
                completions = jobs.map { $0.runIsolated(db) }
                return .commit
            }
            for complete in completions { complete(nil) }
        } catch {
            for complete in completions { complete(error) }
            if completions.count < jobs.count {
                // BEGIN itself failed: no job ran.
                for job in jobs.dropFirst(completions.count) { job.abort(error) }
            }
        }
    }
}
