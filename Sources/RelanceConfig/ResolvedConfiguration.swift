import Foundation
import Logging
import RelanceCore

/// An error the operator must fix before the daemon can run (exit code 2: bad usage or input).
public struct UsageError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The resolved configuration and where it came from.
public struct ResolvedConfiguration: Sendable {
    public var configuration: RelanceConfiguration
    public var provenance: ConfigurationLoader.Provenance
    /// Set when no file was given and `/etc/relance/relance.yaml` does not exist.
    public var embeddedStateDirectory: String?

    public static let systemPath = "/etc/relance/relance.yaml"

    /// `--config PATH` (must exist), else `/etc/relance/relance.yaml`, else the embedded default:
    /// state under `$STATE_DIRECTORY` or `./relance-data`, templates from `./templates` or the installed ones.
    public static func resolve(configPath: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ResolvedConfiguration {
        if let configPath {
            guard FileManager.default.fileExists(atPath: configPath) else { throw UsageError("--config \(configPath): no such file") }
            do {
                let (c, p) = try ConfigurationLoader.load(file: configPath, environment: environment)
                return ResolvedConfiguration(configuration: c, provenance: p)
            } catch { throw UsageError("\(error)") }
        }
        if FileManager.default.fileExists(atPath: systemPath) {
            do {
                let (c, p) = try ConfigurationLoader.load(file: systemPath, environment: environment)
                return ResolvedConfiguration(configuration: c, provenance: p)
            } catch { throw UsageError("\(error)") }
        }
        let state =
            environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) }
            ?? (FileManager.default.currentDirectoryPath + "/relance-data")
        let templates =
            FileManager.default.fileExists(atPath: "templates") ? FileManager.default.currentDirectoryPath + "/templates" : "/usr/share/relance/templates"
        let yaml = """
            spool: { root: "\(state)/spool", attachments_root: "\(state)/attachments" }
            store: { path: "\(state)/ledger.sqlite" }
            templates: { path: "\(templates)" }
            email: { transport: outbox, outbox: { maildir: "\(state)/outbox/mail" } }
            sms: { provider: outbox, outbox: { path: "\(state)/outbox/sms.jsonl" } }
            """
        do {
            let (c, p) = try ConfigurationLoader.load(file: nil, yaml: yaml, environment: environment)
            return ResolvedConfiguration(configuration: c, provenance: p, embeddedStateDirectory: state)
        } catch { throw UsageError("\(error)") }
    }

    public func logSource(_ logger: Logger) {
        if let state = embeddedStateDirectory {
            logger.notice(
                "no configuration file: running on the embedded default (outbox transports, SQLite ledger)",
                metadata: ["relance.state": "\(state)", "relance.templates": "\(configuration.templates.path)"])
        } else {
            logger.info("configuration loaded", metadata: ["relance.config": "\(provenance.file ?? "-")"])
        }
        if !provenance.environment.isEmpty {
            logger.info("environment overrides", metadata: ["relance.keys": "\(provenance.environment.joined(separator: ","))"])
        }
        if !provenance.credentials.isEmpty { logger.info("credentials loaded", metadata: ["relance.keys": "\(provenance.credentials.joined(separator: ","))"]) }
    }
}
