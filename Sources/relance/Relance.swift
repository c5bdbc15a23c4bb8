import ArgumentParser
import Foundation
import Logging
import RelanceConfig
import RelanceCore
import RelanceDaemon
import RelanceDispatch
import RelanceStore
import RelanceTransport

@main
struct Relance: AsyncParsableCommand {
    static let version = "0.3.0"

    static let configuration = CommandConfiguration(
        commandName: "relance",
        abstract: "Payment reminders from a spool directory, by email and SMS, with receipts.",
        discussion: """
            Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid input.
            Without --config, /etc/relance/relance.yaml is read; without it, the embedded default runs \
            (state in $STATE_DIRECTORY or ./relance-data, outbox transports).
            """,
        version: "relance \(version) (commit \(BuildInfo.commit))\nlibcurl \(CurlGlobal.version)\nSQLite \(Ledger.sqliteVersion)",
        subcommands: [
            Serve.self, Preview.self, Enqueue.self, Cancel.self, Pause.self, Resume.self, Suppress.self, Unsuppress.self, Receipts.self, Check.self,
            Status.self, Resolve.self, Purge.self, Forget.self, Import.self, PlanCommand.self, ReceivablesCommand.self, ReportCommand.self, BounceCommand.self, ScoreCommand.self,
            Migrate.self, Export.self,
        ])

    /// ArgumentParser answers a usage error with 64 (EX_USAGE); Relance promises 2 for any bad usage.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: /etc/relance/relance.yaml, else the embedded default).")
    var config: String?

    /// The configuration in force (its ledger: `store.url`'s PostgreSQL, else `store.path`'s SQLite).
    func resolve() throws -> ResolvedConfiguration {
        do { return try ResolvedConfiguration.resolve(configPath: config) } catch let error as UsageError { throw Fail.usage(error.description) }
    }
}

/// Errors that set the exit code.
enum Fail: Error, CustomStringConvertible {
    case usage(String)
    case runtime(String)
    var description: String {
        switch self {
        case .usage(let s), .runtime(let s): return s
        }
    }
}

extension ParsableCommand {
    /// Runs `body`, turning failures into a message on stderr and exit code 1 or 2.
    static func guarded(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as Fail {
            FileHandle.standardError.write(Data("relance: \(error)\n".utf8))
            switch error {
            case .usage: throw ExitCode(2)
            case .runtime: throw ExitCode(1)
            }
        } catch let error as UsageError {
            FileHandle.standardError.write(Data("relance: \(error)\n".utf8))
            throw ExitCode(2)
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("relance: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

func makeLogger(_ configuration: RelanceConfiguration) -> Logger {
    LogLevelBox.shared.level = configuration.log.level.loggerLevel
    return Logger(label: "relance") { label in RelanceLogHandler(label: label, levelBox: LogLevelBox.shared) }
}

/// An RFC 3339 instant given on the command line.
func parseInstant(_ text: String?, option: String) throws -> Date? {
    guard let text else { return nil }
    guard let date = Timestamp.parse(text) else {
        throw Fail.usage("\(option) \(text): expected an RFC 3339 date-time with an offset, e.g. 2026-12-05T23:00:00+01:00")
    }
    return date
}

/// An instant that must be in the future (the end of a pause or a hold).
func parseFutureInstant(_ text: String?, option: String) throws -> Date? {
    guard let date = try parseInstant(text, option: option) else { return nil }
    guard date > Date() else { throw Fail.usage("\(option) \(text ?? ""): a pause must end in the future") }
    return date
}

func components(_ resolved: ResolvedConfiguration) throws -> Components {
    do { return try Components(resolved.configuration) } catch let error as UsageError { throw Fail.usage(error.description) }
}

/// A day given on the command line: `YYYY-MM-DD`, or an RFC 3339 instant (its date in `zone`);
/// today in `zone` when absent.
func parseDay(_ text: String?, option: String, in zone: TimeZone) throws -> CivilDate {
    if let text, text.utf8.count == 10, let day = CivilDate(text) { return day }
    return CivilDate(try parseInstant(text, option: option) ?? Date(), in: zone)
}

