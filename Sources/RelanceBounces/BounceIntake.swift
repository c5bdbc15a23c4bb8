import Crypto
import Foundation
import Logging
import Metrics
import RelanceCore
import RelanceStore

/// One message that came back to the bounce address, from any way in (the `relance bounce`
/// pipe, a watched Maildir, IMAP): classified, its delivery authenticated by its VERP token,
/// then applied by the ledger's rules. Idempotent: the same message seen twice, or by two ways
/// in, is applied once.
public struct BounceIntake: Sendable {
    public let verp: VERP
    public let rules: BounceRules
    public let ledger: any LedgerStore
    public let logger: Logger

    public init(verp: VERP, rules: BounceRules, ledger: any LedgerStore, logger: Logger) {
        self.verp = verp
        self.rules = rules
        self.ledger = ledger
        self.logger = logger
    }

    /// What became of one message.
    public enum Outcome: Sendable, Hashable {
        /// Not a bounce (auto-reply, read receipt, challenge, success report, anything else).
        case ignored(BounceClassifier.NotABounce)
        /// A bounce that names no delivery of ours (no token, or a token of another domain).
        case unmatched
        /// A bounce whose every token fails to verify: forged or altered. Nothing changed.
        case forged([String])
        /// Applied (or found already applied) for this delivery.
        case applied(DeliveryKey, BounceResult)

        /// Whether the message was recognised as a bounce of ours (IMAP moves only those).
        public var recognised: Bool {
            switch self {
            case .applied(_, let result): result != .notYetRecorded && result != .noDelivery
            case .ignored, .unmatched, .forged: false
            }
        }

        /// For the `relance_bounces_total` metric: the ledger's result, or why nothing was applied.
        public var label: String {
            switch self {
            case .ignored: "not_a_bounce"
            case .unmatched: "unmatched"
            case .forged: "forged"
            case .applied(_, let result): result.label
            }
        }

        /// Whether to look at the message again later (its send is not recorded yet).
        public var retryLater: Bool {
            if case .applied(_, .notYetRecorded) = self { return true }
            return false
        }
    }

    /// Classifies and applies one message. `source`: `pipe`, `maildir`, `imap`. Throws only when
    /// the ledger refuses (the caller keeps the message and tries again).
    public func process(_ message: Data, source: String, now: Date) async throws -> Outcome {
        var logger = self.logger
        logger[metadataKey: "relance.bounce.source"] = "\(source)"
        let outcome = try await classifyAndApply(message, source: source, now: now, logger: logger)
        Counter(label: "relance_bounces_total", dimensions: [("source", source), ("result", outcome.label)]).increment()
        return outcome
    }

    func classifyAndApply(_ message: Data, source: String, now: Date, logger: Logger) async throws -> Outcome {
        switch BounceClassifier.classify(message) {
        case .notABounce(let reason):
            logger.info("not a bounce: ignored", metadata: ["relance.reason": "\(reason.rawValue)"])
            return .ignored(reason)
        case .bounce(let recipients, let references):
            var keys: [DeliveryKey] = []
            var forged: [String] = []
            for reference in references {
                switch verp.verify(reference) {
                case .success(let key): if !keys.contains(key) { keys.append(key) }
                // Logged: keep it short and printable, it comes from outside.
                case .failure(.forged(let token)): forged.append(String(String.UnicodeScalarView(token.unicodeScalars.filter { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }.prefix(80))))
                case .failure(.notOurs): break
                }
            }
            guard !keys.isEmpty else {
                if !forged.isEmpty {
                    logger.warning(
                        "a bounce with a forged or altered VERP token: nothing changed",
                        metadata: ["relance.tokens": "\(forged.joined(separator: ", "))", "relance.message_id": "\(Self.messageID(message) ?? "-")"])
                    return .forged(forged)
                }
                logger.notice("a bounce that names no delivery of ours: ignored", metadata: ["relance.message_id": "\(Self.messageID(message) ?? "-")"])
                return .unmatched
            }
            let reference = Self.reference(message)
            // One VERP token per message: several verified keys would be a merged report; the first decides.
            let key = keys[0]
            let result = try await ledger.applyBounce(BounceNotice(key: key, recipients: recipients, source: source, reference: reference), rules: rules, now: now)
            let metadata: Logger.Metadata = ["relance.reminder.id": "\(key.reminderID)", "relance.bounce.result": "\(result.label)"]
            switch result {
            case .bounced, .suppressed: logger.notice("hard bounce applied", metadata: metadata)
            case .softCounted: logger.info("soft bounce counted", metadata: metadata)
            case .duplicate: logger.info("bounce already applied", metadata: metadata)
            case .noDelivery: logger.warning("a verified bounce for a delivery the ledger does not have", metadata: metadata)
            case .notYetRecorded: logger.info("bounce for a send not recorded yet: kept for later", metadata: metadata)
            }
            return .applied(key, result)
        }
    }

    /// The bounce's own Message-ID, else a digest of its bytes: what makes it the same bounce.
    static func reference(_ message: Data) -> String {
        if let id = messageID(message) { return "mid:" + id }
        return "sha256:" + SHA256.hash(data: message).map { String(format: "%02x", $0) }.joined()
    }

    static func messageID(_ message: Data) -> String? {
        let (headers, _) = MIMEReader.split(String(decoding: message.prefix(256 << 10), as: UTF8.self))
        guard let id = MIMEReader.value(headers, "message-id")?.trimmingCharacters(in: .whitespacesAndNewlines), !id.isEmpty, id.count <= 998 else {
            return nil
        }
        return id
    }
}
