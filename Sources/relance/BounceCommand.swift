import ArgumentParser
import Foundation
import RelanceBounces
import RelanceConfig
import RelanceStore

/// `relance bounce`: one message on standard input, for a Postfix pipe (docs/bounces.md).
struct BounceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bounce",
        abstract: "Read one message that came back to the bounce address on standard input and apply it (for a Postfix pipe).",
        discussion: """
            The message is classified (RFC 3464 reports, every recipient; unstructured bounces from mailer daemons), its delivery \
            authenticated by its VERP token (email.bounce), and applied: a hard bounce makes the delivery bounced, suppresses the \
            address and starts the fallback channel; soft bounces are counted (email.bounce.soft_limit). Auto-replies, read \
            receipts, challenge-responses, strangers' bounces and forged tokens change nothing.

            Exit status, for the MTA: 0 when the message was applied or deliberately ignored (so that a bounce is never bounced); \
            75 (EX_TEMPFAIL: the MTA keeps it and tries again) when the ledger cannot be written, the configuration cannot be read, \
            or the send it reports is not recorded yet.
            """)

    @OptionGroup var options: ConfigOption
    @Option(
        help: ArgumentHelp(
            "The envelope recipient, when the MTA gives it (Postfix pipe: ${original_recipient}; local(8) sets ORIGINAL_RECIPIENT).",
            valueName: "address")) var recipient: String?
    @Option(help: "Messages larger than this many bytes are ignored (bounces are small; a returned attachment is cut).") var maxBytes = 10 << 20

    static let tempFail: Int32 = 75

    func run() async throws {
        let resolved: ResolvedConfiguration
        do { resolved = try options.resolve() } catch {
            return try Self.defer("\(error)")
        }
        let configuration = resolved.configuration
        guard let bounce = configuration.email.bounce else {
            return try Self.defer("email.bounce is not configured: no bounce can be verified (docs/bounces.md)")
        }
        let logger = makeLogger(configuration)
        var message = Data()
        while message.count <= maxBytes, let chunk = try FileHandle.standardInput.read(upToCount: 1 << 16), !chunk.isEmpty {
            message.append(chunk)
        }
        if message.count > maxBytes {
            // The start of a large message still holds the report and the returned headers.
            logger.notice("a large message on the bounce address: only its first bytes are read", metadata: ["relance.bytes": "> \(maxBytes)"])
            message = message.prefix(maxBytes)
        }
        // The envelope recipient names the delivery too: put it where the classifier looks.
        let environment = ProcessInfo.processInfo.environment
        if let to = recipient ?? environment["ORIGINAL_RECIPIENT"] ?? environment["RECIPIENT"],
            !to.isEmpty, !to.contains(where: \.isNewline)
        {
            message = Data("X-Original-To: \(to)\r\n".utf8) + message
        }
        let outcome: BounceIntake.Outcome
        do {
            outcome = try await withLedger(configuration, write: true, create: true) { ledger in
                let intake = BounceIntake(verp: VERP(domain: bounce.domain, secret: bounce.secret), rules: bounce.rules, ledger: ledger, logger: logger)
                return try await intake.process(message, source: "pipe", now: Date())
            }
        } catch {
            return try Self.defer("the ledger refused the bounce: \(error)")
        }
        if outcome.retryLater { return try Self.defer("the send this bounce reports is not recorded yet") }
        print(Self.describe(outcome))
    }

    /// Keeps the message at the MTA: it tries again later.
    static func `defer`(_ reason: String) throws {
        FileHandle.standardError.write(Data("relance bounce: \(reason); try again later\n".utf8))
        throw ExitCode(tempFail)
    }

    static func describe(_ outcome: BounceIntake.Outcome) -> String {
        switch outcome {
        case .ignored(let reason): "ignored: not a bounce (\(reason.rawValue))"
        case .unmatched: "ignored: a bounce that names no delivery of this ledger"
        case .forged: "ignored: forged or altered VERP token (logged)"
        case .applied(let key, let result):
            switch result {
            case .bounced(let address, let fallback):
                "\(key.reminderID)/email: bounced; \(address) suppressed"
                    + (fallback.isEmpty ? "" : "; fallback: \(fallback.map(\.rawValue).joined(separator: ", "))")
            case .suppressed(let address, let status): "\(key.reminderID)/email: stays \(status.rawValue); \(address) suppressed"
            case .softCounted(let count, let limit): "\(key.reminderID)/email: soft bounce \(count) of \(limit)"
            case .duplicate: "\(key.reminderID)/email: already applied"
            case .noDelivery: "\(key.reminderID)/email: no such delivery in this ledger"
            case .notYetRecorded: "\(key.reminderID)/email: send not recorded yet"
            }
        }
    }
}
