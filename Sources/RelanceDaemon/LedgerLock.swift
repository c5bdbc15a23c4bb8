import Foundation
import RelanceConfig

/// `flock` on `<ledger>.lock`: only one daemon may own a ledger.
public final class LedgerLock: Sendable {
    let fd: Int32
    public let path: String

    public init(ledgerPath: String) throws {
        path = ledgerPath + ".lock"
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw UsageError("cannot create \(dir) for the ledger: \(error.localizedDescription)")
            }
        }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw UsageError("cannot open lock file \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw LockHeld(description: "another relance serve (pid \(holder)) owns the ledger \(ledgerPath); refusing to start")
        }
        // The holder's pid, for the message another start shows (the lock itself is the flock).
        let pid = Array("\(getpid())\n".utf8)
        let written = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard ftruncate(fd, off_t(pid.count)) == 0, written == pid.count else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw UsageError("cannot write lock file \(path): \(reason)")
        }
    }

    deinit { close(fd) }

    public struct LockHeld: Error, CustomStringConvertible { public var description: String }
}
