import Foundation
import Logging
import RelanceSpool

/// The bounces a Maildir receives (`email.bounce.maildir`): each message in `new/` is read,
/// applied through the intake, then moved to `cur/` marked seen (`:2,S`), recognised or not, so
/// that a mail client shows what was read. A message whose send is not recorded yet stays in
/// `new/` for the next pass; nothing is ever deleted.
public struct MaildirBounces: Sendable {
    public let directory: String
    public let intake: BounceIntake
    /// Larger messages are read up to this many bytes (the report and returned headers come first).
    public var maxBytes = 10 << 20

    public init(directory: String, intake: BounceIntake) {
        self.directory = directory
        self.intake = intake
    }

    public struct Pass: Sendable, Hashable {
        /// Messages read and moved to `cur/`.
        public var read = 0
        /// Of those, bounces that changed a delivery (bounced, suppressed, soft counted).
        public var applied = 0
        /// Left in `new/` for later (send not recorded yet, or the ledger refused).
        public var deferred = 0
    }

    /// One pass over `new/`, oldest names first. Stops early when the ledger refuses a write.
    public func pass(now: @Sendable () -> Date = Date.init) async -> Pass {
        let (directory, maxBytes) = (self.directory, self.maxBytes)
        var result = Pass()
        let names: [String]
        do {
            names = try await offPool {
                try FileManager.default.contentsOfDirectory(atPath: directory + "/new").filter { !$0.hasPrefix(".") }.sorted()
            }
        } catch {
            intake.logger.warning("cannot read the bounce Maildir", metadata: ["relance.path": "\(directory)/new", "error": "\(error)"])
            return result
        }
        for name in names {
            let path = directory + "/new/" + name
            let data: Data
            do {
                data = try await offPool {
                    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
                    defer { try? handle.close() }
                    return try handle.read(upToCount: maxBytes) ?? Data()
                }
            } catch {
                // Gone meanwhile (another reader), or unreadable: the next pass sees.
                continue
            }
            let outcome: BounceIntake.Outcome
            do {
                outcome = try await intake.process(data, source: "maildir", now: now())
            } catch {
                intake.logger.error("the ledger refused a bounce; it stays in the Maildir", metadata: ["relance.file": "\(name)", "error": "\(error)"])
                result.deferred += 1
                break
            }
            if outcome.retryLater {
                result.deferred += 1
                continue
            }
            let seen = directory + "/cur/" + (name.contains(":2,") ? name : name + ":2,S")
            do {
                try await offPool { try FileIO.rename(path, seen) }
            } catch {
                intake.logger.warning("cannot move a read bounce to cur/", metadata: ["relance.file": "\(name)", "error": "\(error)"])
            }
            result.read += 1
            if case .applied(_, let r) = outcome, r != .duplicate, r != .noDelivery { result.applied += 1 }
        }
        return result
    }
}
