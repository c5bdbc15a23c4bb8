import Foundation
import GRDB
import Synchronization

/// Runs concurrent small writes in shared transactions: whoever finds no flush running becomes the
/// flusher and commits every queued write in one transaction (each in its own savepoint, so one
/// failing write does not undo its neighbours), until the queue is empty. Callers resume only after
/// the transaction holding their write has committed.
final class GroupCommit: Sendable {
    private struct Job: @unchecked Sendable {
        // @unchecked: `run` is only ever called once, on GRDB's writer queue, by the flusher.
        /// Runs the write inside the open transaction; returns what to do once the commit is known.
        let run: (Database) -> @Sendable ((any Error)?) -> Void
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
            let job = Job(
                run: { db in
                    let result: Result<T, any Error>
                    do {
                        result = .success(try Self.inSavepoint(db) { try body(db) })
                    } catch {
                        result = .failure(error)
                    }
                    return { commitError in
                        if let commitError { continuation.resume(throwing: commitError) } else { continuation.resume(with: result) }
                    }
                }, abort: { continuation.resume(throwing: $0) })
            let becomeFlusher = state.withLock { state -> Bool in
                state.queue.append(job)
                if state.flushing { return false }
                state.flushing = true
                return true
            }
            if becomeFlusher { flush() }
        }
    }

    /// Runs `body` in a savepoint of the open transaction, rolled back if it throws. The savepoint
    /// statements come from the connection's statement cache (`Database.inSavepoint` prepares
    /// them for every write, and a flush holds hundreds) and run through SQLite's C API, as the
    /// writes of the send path do (two of them around every write).
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
                var completions: [@Sendable ((any Error)?) -> Void] = []
                do {
                    try db.inTransaction {
                        completions = jobs.map { $0.run(db) }
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
    }
}
