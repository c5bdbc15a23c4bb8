import Foundation
import RelanceCore
import Synchronization

/// The embedded default transport for email: each message becomes a file in a Maildir, written in
/// `tmp/`, fsynced, then renamed into `new/` (readers never see a partial message).
public final class MaildirOutbox: Sendable {
    public let directory: String
    private let queue = DispatchQueue(label: "relance.outbox.maildir", attributes: .concurrent)
    private let counter = Atomic<Int>(0)

    public init(directory: String) throws {
        self.directory = directory
        for sub in ["tmp", "new", "cur"] {
            try FileManager.default.createDirectory(atPath: directory + "/" + sub, withIntermediateDirectories: true)
        }
    }

    /// `returnPath`: the envelope sender, recorded first as a `Return-Path` header, as a final
    /// delivery agent does (it is where the message would bounce to).
    public func send(message: Data, returnPath: String? = nil) async -> SendOutcome {
        let message =
            if let returnPath, !returnPath.contains(where: { $0.isNewline || $0 == ">" }) {
                Data("Return-Path: <\(returnPath)>\r\n".utf8) + message
            } else {
                message
            }
        let n = counter.add(1, ordering: .relaxed).newValue
        let now = Date()
        let name = "\(Int(now.timeIntervalSince1970)).M\(Int(now.timeIntervalSince1970 * 1e6) % 1_000_000)P\(getpid())Q\(n).relance"
        let directory = self.directory
        return await withCheckedContinuation { continuation in
            queue.async {
                let tmp = directory + "/tmp/" + name
                let final = directory + "/new/" + name
                do {
                    try FileIO.writeDurably(message, to: tmp)
                    try FileIO.rename(tmp, final)
                    continuation.resume(returning: .sent(providerID: name, code: nil, detail: "written to \(final)"))
                } catch {
                    try? FileManager.default.removeItem(atPath: tmp)
                    continuation.resume(returning: .transient(code: nil, detail: "outbox write failed: \(error)", retryAfter: nil))
                }
            }
        }
    }
}
