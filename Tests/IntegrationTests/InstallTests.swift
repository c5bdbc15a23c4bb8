import Foundation
import Testing

/// `make install` into a scratch root, systemd's sysusers and tmpfiles applied to it, then the
/// unit's `ExecStartPre=relance check` run as the service user.
@Suite struct InstallTests {
    func run(_ arguments: [String], in sandbox: Sandbox, environment: [String: String] = [:]) async throws -> (Int32, String) {
        // Run from the checkout (make install), output kept in the sandbox, not in the checkout.
        let child = try Child("/usr/bin/env", arguments, environment: environment, directory: Package.root, outputDirectory: sandbox.root)
        let status = try await child.wait()
        return (status, child.stdout + child.stderr)
    }

    /// After `make install`, /etc/relance/relance.yaml was root:root 0640: the relance user could not
    /// read it, so the unit's `relance check` failed before the daemon ever started.
    @Test func theServiceUserCanCheckTheInstalledConfiguration() async throws {
        for tool in ["systemd-sysusers", "systemd-tmpfiles", "setpriv", "make"] {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/\(tool)") || FileManager.default.isExecutableFile(atPath: "/bin/\(tool)") else {
                Issue.record("\(tool) is not installed; cannot test the installed unit")
                return
            }
        }
        let sandbox = try Sandbox()
        let root = sandbox.root + "/root"
        let (made, makeOutput) = try await run(["make", "-s", "install-data", "DESTDIR=\(root)", "PREFIX=/usr/local"], in: sandbox)
        #expect(made == 0, "\(makeOutput)")
        #expect(try await run(["systemd-sysusers", "--root=\(root)"], in: sandbox).0 == 0)
        #expect(try await run(["systemd-tmpfiles", "--root=\(root)", "--create"], in: sandbox).0 == 0)

        let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
        let entry = try #require(passwd.split(separator: "\n").first { $0.hasPrefix("relance:") }).split(separator: ":")
        let (uid, gid) = (String(entry[2]), String(entry[3]))
        let config = root + "/etc/relance/relance.yaml"
        let attributes = try FileManager.default.attributesOfItem(atPath: config)
        #expect((attributes[.posixPermissions] as? Int) == 0o640)
        #expect((attributes[.groupOwnerAccountID] as? Int).map(String.init) == gid, "the configuration belongs to group relance")
        #expect((attributes[.ownerAccountID] as? Int) == 0)

        // ExecStartPre, as User=relance (the installed templates live under the scratch root).
        let check = try await run(
            ["setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", Package.relance, "check", "--config", config], in: sandbox,
            environment: ["RELANCE_TEMPLATES_PATH": root + "/usr/local/share/relance/templates"])
        #expect(check.0 == 0, "\(check.1)")
        #expect(check.1.contains("configuration: ok"))
        #expect(check.1.contains("templates: ok"))
        // The template for several instances on one host: each its own configuration and state.
        let units = try FileManager.default.contentsOfDirectory(atPath: root + "/lib/systemd/system").sorted()
        #expect(units.contains("relance.service") && units.contains("relance@.service"), "\(units)")
        let template = try String(contentsOfFile: root + "/lib/systemd/system/relance@.service", encoding: .utf8)
        #expect(template.contains("ExecStart=/usr/local/bin/relance serve --config /etc/relance/%i.yaml"))
        #expect(template.contains("StateDirectory=relance/%i") && template.contains("Type=notify"))
        // systemd itself accepts both units (pointed at the binary under test).
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") {
            let units = sandbox.root + "/units"
            try FileManager.default.createDirectory(atPath: units, withIntermediateDirectories: true)
            for unit in ["relance.service", "relance@.service"] {
                let text = try String(contentsOfFile: root + "/lib/systemd/system/" + unit, encoding: .utf8)
                try text.replacingOccurrences(of: "/usr/local/bin/relance", with: Package.relance).write(toFile: units + "/" + unit, atomically: true, encoding: .utf8)
            }
            let verify = try await run(["systemd-analyze", "verify", units + "/relance.service", units + "/relance@.service"], in: sandbox)
            #expect(verify.0 == 0, "\(verify.1)")
        }
        // Nobody else reads it: the file holds secrets.
        let other = try await run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", Package.relance, "check", "--config", config], in: sandbox)
        #expect(other.0 == 2, "\(other.1)")
    }
}
