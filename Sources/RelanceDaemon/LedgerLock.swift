import Foundation
import RelanceConfig

/// `flock` on `<ledger>.lock`: only one daemon may own a ledger.
public final class LedgerLock: Sendable {
    let fd: Int32
    public let path: String

    public init(ledgerPath: String) throws {
        path = ledgerPath + ".lock"
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw UsageError("cannot open lock file \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw LockHeld(description: "another relance serve (pid \(holder)) owns the ledger \(ledgerPath); refusing to start")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    deinit { close(fd) }

    public struct LockHeld: Error, CustomStringConvertible { public var description: String }
}
