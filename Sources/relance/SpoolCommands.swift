import ArgumentParser
import Foundation
import RelanceConfig
import RelanceCore
import RelanceDispatch
import RelanceSpool
import RelanceStore

struct Preview: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what would be sent for each delivery of a spool file, and the decision; send nothing.",
        discussion: """
            Emails are shown decoded, to be proofread: the headers, the text part, the HTML part as text, the \
            attachments listed. --raw prints the exact MIME bytes instead. SMS show their encoding and segments.
            """)

    @OptionGroup var options: ConfigOption
    @Argument(help: "A spool file (.json or .jsonl).")
    var file: String
    @Option(help: "Evaluate the policy as of this instant (RFC 3339, e.g. 2026-12-05T23:00:00+01:00) instead of now.")
    var now: String?
    @Flag(help: "Print each email's exact MIME bytes (quoted-printable, encoded words) instead of the decoded view.")
    var raw = false

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            let components = try components(resolved)
            guard FileManager.default.fileExists(atPath: file) else { throw Fail.usage("\(file): no such file") }
            let instant = try parseInstant(now, option: "--now") ?? Date()
            let parsed = components.parser.parse(path: file)
            try await withLedgerIfPresent(resolved.configuration) { ledger in
                let previewer = Previewer(components: components, ledger: ledger, clock: { instant })
                print("Policy evaluated as of \(Timestamp.format(instant, in: previewer.policy.home)).\n")
                for (line, reminder) in parsed.reminders {
                    for item in await previewer.items(for: reminder, sourceFile: (file as NSString).lastPathComponent) {
                        print("=== \(item.key) (line \(line)) — decision: \(item.decision)")
                        switch item.message {
                        case .email(let from, let to, let data)?:
                            print("envelope: MAIL FROM:<\(from)> RCPT TO:<\(to)>")
                            if raw {
                                print(String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n"))
                            } else {
                                print(MIMEReader.render(MIMEReader.read(data)))
                            }
                        case .sms(let sms)?:
                            print("SMS from \(sms.from) to \(sms.to): \(sms.analysis)")
                            print(sms.text)
                        case nil:
                            break
                        }
                        print("")
                    }
                }
                for error in parsed.errors {
                    print("INVALID line \(error.line)\(error.field.isEmpty ? "" : " field \(error.field)"): \(error.reason)")
                }
                if !parsed.errors.isEmpty { throw ExitCode(2) }
            }
        }
    }
}

struct Enqueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate spool files and drop them into the spool (written in tmp/, then renamed into incoming/).",
        discussion: "A file with any invalid record is refused as a whole and nothing of it is dropped (exit 2).")

    @OptionGroup var options: ConfigOption
    @Option(help: "Named queue (a subdirectory of incoming/); default: the default queue.")
    var queue: String?
    @Argument(help: "Spool files (.json or .jsonl).")
    var files: [String]

    func run() async throws {
        try await Self.guarded {
            let resolved = try options.resolve()
            let components = try components(resolved)
            if let queue, queue.isEmpty || queue.contains("/") || queue.hasPrefix(".") { throw Fail.usage("--queue must be a plain directory name") }
            try components.layout.create()
            var refused = false
            for file in files {
                let parsed = components.parser.parse(path: file)
                if !parsed.errors.isEmpty {
                    refused = true
                    for error in parsed.errors {
                        FileHandle.standardError.write(
                            Data("\(file): line \(error.line)\(error.field.isEmpty ? "" : " field \(error.field)"): \(error.reason)\n".utf8))
                    }
                    continue
                }
                guard let data = FileManager.default.contents(atPath: file) else { throw Fail.runtime("\(file): cannot be read") }
                let name = (file as NSString).lastPathComponent
                let unique = "\(Int(Date().timeIntervalSince1970))-\(getpid())-\(name)"
                let tmp = components.layout.tmp + "/" + unique
                let targetDir = components.layout.incoming(queue: queue ?? SpoolLayout.defaultQueue)
                try FileManager.default.createDirectory(atPath: targetDir, withIntermediateDirectories: true)
                do {
                    try FileIO.writeDurably(data, to: tmp, mode: 0o660)
                    try FileIO.rename(tmp, targetDir + "/" + unique)
                } catch { throw Fail.runtime("\(error)") }
                print("enqueued \(file) as \(targetDir)/\(unique) (\(parsed.reminders.count) reminder\(parsed.reminders.count == 1 ? "" : "s"))")
            }
            if refused { throw ExitCode(2) }
        }
    }
}
