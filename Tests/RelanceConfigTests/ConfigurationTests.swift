import Foundation
import Testing

@testable import RelanceConfig

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

@Suite struct ConfigurationTests {
    @Test func shippedExampleIsValid() throws {
        let (config, _) = try ConfigurationLoader.load(file: packageRoot + "/config/relance.example.yaml", environment: [:])
        #expect(config.email.transport == .smtp)
        #expect(config.email.smtp.starttls == .required)
        #expect(config.queue("urgent").priority == 10)
        #expect(config.queue("bulk").share == 0.5)
        #expect(config.queue("default").priority == 0)
        #expect(config.delivery.retry.schedule.first == .seconds(300))
        #expect(config.delivery.retry.schedule.lifetime == .seconds(172_800))
    }

    @Test func defaultsWhenEmpty() throws {
        let (config, _) = try ConfigurationLoader.load(file: nil, yaml: "", environment: [:])
        #expect(config.email.transport == .outbox)
        #expect(config.store.path == "/var/lib/relance/ledger.sqlite")
        #expect(config.delivery.inDoubt == .hold)
        #expect(config.stages == ["pre_due", "reminder_1", "reminder_2", "final_notice"])
    }

    @Test(arguments: [
        ("email: { transprot: smtp }", "email.transprot"),
        ("spool: { rot: /x }", "spool.rot"),
        ("webhooks: { lisen: x }", "webhooks.lisen"),
        ("delivery: { retry: { firts: 1s } }", "delivery.retry.firts"),
        ("queues: { urgent: { priorty: 1 } }", "queues.urgent.priorty"),
    ])
    func unknownKeysAreRefusedWithTheirPath(_ yaml: String, _ path: String) {
        #expect {
            try ConfigurationLoader.load(file: nil, yaml: yaml, environment: [:])
        } throws: { error in
            "\(error)".contains("unknown key '\(path)'")
        }
    }

    @Test(arguments: [
        "email: { transport: smpt }", "delivery: { retry: { first: soon } }", "email: { smtp: { url: \"http://x\" } }",
        "email: { from: \"no address\" }", "defaults: { timezone: Mars/Base }", "delivery: { in_doubt: maybe }",
        "sms: { provider: twilio }", "log: { level: loud }",
    ])
    func badValuesAreRefused(_ yaml: String) {
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(file: nil, yaml: yaml, environment: [:]) }
    }

    @Test func environmentAndCredentialsOverrideTheFile() throws {
        let dir = NSTemporaryDirectory() + "relance-creds-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "s3cret-from-file\n".write(toFile: dir + "/email-smtp-password", atomically: true, encoding: .utf8)
        let (config, provenance) = try ConfigurationLoader.load(
            file: nil, yaml: "email: { smtp: { url: \"smtp://a:25\", connections: 2 } }",
            environment: ["RELANCE_EMAIL_SMTP_URL": "smtps://relay.example.fr:465", "RELANCE_EMAIL_SMTP_CONNECTIONS": "6", "CREDENTIALS_DIRECTORY": dir])
        #expect(config.email.smtp.url == "smtps://relay.example.fr:465")
        #expect(config.email.smtp.connections == 6)
        #expect(config.email.smtp.password == "s3cret-from-file")
        #expect(provenance.credentials == ["email-smtp-password"])
        #expect(provenance.environment.sorted() == ["RELANCE_EMAIL_SMTP_CONNECTIONS", "RELANCE_EMAIL_SMTP_URL"])
    }

    @Test(arguments: [
        ("email: { transport: smpt }", "email.transport", "outbox, smtp"),
        ("delivery: { in_doubt: maybe }", "delivery.in_doubt", "hold, resend"),
        ("log: { level: loud }", "log.level", "trace, debug, info, notice, warning, error, critical"),
        ("sms: { provider: twillio }", "sms.provider", "outbox, twilio, vonage, brevo, generic"),
    ])
    func aBadChoiceListsTheValidOnes(_ yaml: String, _ path: String, _ valid: String) {
        #expect {
            try ConfigurationLoader.load(file: nil, yaml: yaml, environment: [:])
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains(valid)
        }
    }

    @Test func unknownKeysSuggestTheClosestOne() {
        #expect {
            try ConfigurationLoader.load(file: nil, yaml: "email: { smtp: { pasword: x } }", environment: [:])
        } throws: { error in
            "\(error)".contains("unknown key 'email.smtp.pasword' (did you mean password?")
        }
    }
}

/// The keys the environment and the credentials may set, derived from the decoders.
@Suite struct OverrideTests {
    @Test func everyDeclaredScalarKeyIsOverridableIncludingTheOnesTheHandListMissed() {
        let kinds = ConfigurationKeys.relance.kinds
        for path in [
            "email.secondary_smtp.password", "email.secondary_smtp.url", "sms.vonage.signature_secret", "sms.vonage.insecure_unsigned",
            "policy.caps.per_day", "delivery.breaker.cooldown", "agency.name", "creditor.payment_instructions", "log.level", "spool.root",
        ] {
            #expect(kinds[path] == .scalar, "\(path) in \(kinds.keys.filter { $0.hasPrefix(path.split(separator: ".")[0] + ".") }.sorted())")
        }
        #expect(kinds["sms.generic.headers"] == .scalarMap)
        #expect(kinds["templates.vars"] == .scalarMap)
        #expect(kinds["queues"] == .fileOnly)
        #expect(kinds["stages"] == .fileOnly)
        #expect(kinds["compliance.rules"] == .fileOnly)
        let names = kinds.filter { $0.value == .scalar }.keys.map(ConfigurationKeys.environmentName)
        #expect(Set(names).count == names.count, "no two keys share an environment variable")
    }

    @Test func credentialsReachTheSecondaryRelayAndGenericHeaders() throws {
        let dir = NSTemporaryDirectory() + "relance-creds-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "relay-2-secret\n".write(toFile: dir + "/email-secondary_smtp-password", atomically: true, encoding: .utf8)
        try "Bearer gw-secret".write(toFile: dir + "/sms-generic-headers-Authorization", atomically: true, encoding: .utf8)
        let yaml = """
            email: { secondary_smtp: { url: "smtp://b:25" } }
            sms: { generic: { headers: { Authorization: "set by a credential" } } }
            """
        let (config, provenance) = try ConfigurationLoader.load(file: nil, yaml: yaml, environment: ["CREDENTIALS_DIRECTORY": dir])
        #expect(config.email.secondarySMTP?.password == "relay-2-secret")
        #expect(config.sms.generic.headers["Authorization"] == "Bearer gw-secret")
        #expect(provenance.credentials.sorted() == ["email-secondary_smtp-password", "sms-generic-headers-Authorization"])
    }

    @Test func anEnvironmentMapEntryReplacesTheDeclaredOne() throws {
        let yaml = "sms: { generic: { headers: { X-Api-Key: placeholder } } }"
        let (config, _) = try ConfigurationLoader.load(file: nil, yaml: yaml, environment: ["RELANCE_SMS_GENERIC_HEADERS_X_API_KEY": "k3y"])
        #expect(config.sms.generic.headers == ["X-Api-Key": "k3y"])
        let (limits, _) = try ConfigurationLoader.load(file: nil, yaml: "", environment: ["RELANCE_POLICY_MAX_PER_DAY_SMS": "500"])
        #expect(limits.policy.maxPerDay == [.sms: 500])
    }

    @Test func aVariableThatStartsLikeASectionButNamesNoKeyIsRefusedWithASuggestion() {
        #expect {
            try ConfigurationLoader.load(file: nil, yaml: "", environment: ["RELANCE_EMAIL_SMTP_PASWORD": "x"])
        } throws: { error in
            "\(error)" == "RELANCE_EMAIL_SMTP_PASWORD names no configuration key (did you mean RELANCE_EMAIL_SMTP_PASSWORD?)"
        }
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(file: nil, yaml: "", environment: ["RELANCE_POLICY_WINDOW_SMS": "always"]) }
    }

    @Test func otherRelanceVariablesAreLeftAlone() throws {
        let environment = [
            "RELANCE_CHAOS_KILLS": "3", "RELANCE_TEMPLATES": "/x", "RELANCE_POLICY_YAML": "{ }", "RELANCE_CONCURRENCY": "8", "RELANCE_STARTTLS_OFF": "none",
        ]
        let (_, provenance) = try ConfigurationLoader.load(file: nil, yaml: "", environment: environment)
        #expect(provenance.environment.isEmpty)
    }

    @Test func anUnknownCredentialFileIsRefused() throws {
        let dir = NSTemporaryDirectory() + "relance-creds-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "x".write(toFile: dir + "/email-smtp-pasword", atomically: true, encoding: .utf8)
        #expect {
            try ConfigurationLoader.load(file: nil, yaml: "", environment: ["CREDENTIALS_DIRECTORY": dir])
        } throws: { error in
            "\(error)".contains("credential email-smtp-pasword names no configuration key (did you mean email-smtp-password?)")
        }
    }

    @Test func aBadOverrideNamesTheVariableAndASecretIsNeverEchoed() {
        #expect {
            try ConfigurationLoader.load(file: nil, yaml: "", environment: ["RELANCE_EMAIL_SMTP_CONNECTIONS": "lots"])
        } throws: { error in
            "\(error)".hasPrefix("RELANCE_EMAIL_SMTP_CONNECTIONS: email.smtp.connections:")
        }
        #expect {
            try ConfigurationLoader.load(file: nil, yaml: "", environment: ["RELANCE_WEBHOOKS_API_TOKEN": "short-s3cret"])
        } throws: { error in
            "\(error)".hasPrefix("RELANCE_WEBHOOKS_API_TOKEN: webhooks.api_token:") && !"\(error)".contains("short-s3cret")
        }
    }

    /// `email.bounce` and the SMS reconciliation keys: defaults, the secret as a credential, and
    /// each bad value refused with its path.
    @Test func bounceAndReconciliationSettings() throws {
        let (defaults, _) = try ConfigurationLoader.load(file: nil, yaml: "", environment: [:])
        #expect(defaults.email.bounce == nil, "no bounce handling unless configured")
        #expect(defaults.sms.reconcileAfter.value == .seconds(900) && defaults.sms.reconcileEvery.value == .seconds(300))
        #expect(defaults.sms.reconcileGiveUp.value == .seconds(48 * 3600) && defaults.sms.reconcileRate == 10)
        let dir = NSTemporaryDirectory() + "relance-creds-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "a-long-enough-bounce-secret\n".write(toFile: dir + "/email-bounce-secret", atomically: true, encoding: .utf8)
        try "imap-pass\n".write(toFile: dir + "/email-bounce-imap-password", atomically: true, encoding: .utf8)
        let (config, provenance) = try ConfigurationLoader.load(
            file: nil,
            yaml: """
                email: { bounce: { domain: bounces.example.fr, maildir: /var/mail/bounces, imap: { url: "imaps://mail.example.fr", username: b } } }
                sms: { reconcile_after: 10m, reconcile_every: 1m, reconcile_give_up: 1d }
                """,
            environment: ["CREDENTIALS_DIRECTORY": dir])
        let bounce = try #require(config.email.bounce)
        #expect(bounce.secret == "a-long-enough-bounce-secret" && bounce.imap?.password == "imap-pass")
        #expect(bounce.softLimit == 3 && bounce.softWindow.value == .seconds(30 * 86_400) && bounce.imap?.processedFolder == "Processed")
        #expect(bounce.imap?.starttls == .required && bounce.imap?.folder == "INBOX")
        #expect(provenance.credentials.sorted() == ["email-bounce-imap-password", "email-bounce-secret"])
        #expect(config.sms.reconcileEvery.value == .seconds(60))
        for (yaml, path) in [
            ("email: { bounce: { domain: x.fr } }", "email.bounce.secret"),
            ("email: { bounce: { domain: \"not a domain\", secret: a-long-enough-bounce-secret } }", "email.bounce.domain"),
            ("email: { bounce: { domain: x.fr, secret: short } }", "email.bounce.secret"),
            ("email: { bounce: { domain: x.fr, secret: a-long-enough-bounce-secret, soft_limit: 0 } }", "email.bounce.soft_limit"),
            ("email: { bounce: { domain: x.fr, secret: a-long-enough-bounce-secret, imap: { url: \"pop3://x\" } } }", "email.bounce.imap.url"),
            (
                "email: { bounce: { domain: x.fr, secret: a-long-enough-bounce-secret, imap: { url: \"imap://x\", folder: \"a\\\"b\" } } }",
                "email.bounce.imap.folder"
            ),
            ("email: { bounce: { domain: x.fr, secret: a-long-enough-bounce-secret, imap: { url: \"imap://x\", processed_folder: INBOX } } }", "email.bounce.imap.processed_folder"),
            ("sms: { reconcile_after: 2d, reconcile_give_up: 1d }", "sms.reconcile_give_up"),
            ("sms: { reconcile_rate: 0 }", "sms.reconcile_rate"),
        ] {
            #expect {
                try ConfigurationLoader.load(file: nil, yaml: yaml, environment: [:])
            } throws: { error in
                "\(error)".contains(path)
            }
        }
    }
}

@Suite struct StoreSettingsTests {
    @Test func aPostgreSQLStoreWithItsPasswordFromACredential() throws {
        let (defaults, _) = try ConfigurationLoader.load(file: nil, yaml: "", environment: [:])
        #expect(defaults.store.url == nil && defaults.store.lease.value == .seconds(60) && defaults.store.connections == 8)
        #expect(!defaults.store.node.isEmpty, "host name and pid by default")
        let dir = NSTemporaryDirectory() + "relance-creds-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "s3cret-pg\n".write(toFile: dir + "/store-password", atomically: true, encoding: .utf8)
        let (config, provenance) = try ConfigurationLoader.load(
            file: nil, yaml: "store: { url: \"postgres://relance@db.example.fr/relance\", node_id: node-a, lease: 30s, connections: 4 }",
            environment: ["CREDENTIALS_DIRECTORY": dir])
        #expect(config.store.url?.host == "db.example.fr" && config.store.url?.tls == .verifyFull)
        #expect(config.store.password == "s3cret-pg" && provenance.credentials == ["store-password"])
        #expect(config.store.node == "node-a" && config.store.lease.value == .seconds(30) && config.store.connections == 4)
        let (fromEnvironment, _) = try ConfigurationLoader.load(
            file: nil, yaml: "", environment: ["RELANCE_STORE_URL": "postgres://relance@127.0.0.1:5433/relance", "RELANCE_STORE_PASSWORD": "pw"])
        #expect(fromEnvironment.store.url?.port == 5433 && fromEnvironment.store.password == "pw")
    }

    @Test(arguments: [
        ("store: { url: \"postgres://relance:pw@db/relance\" }", "store.url", "put it in store.password"),
        ("store: { url: \"http://db/relance\" }", "store.url", "postgres://"),
        ("store: { lease: 2s }", "store.lease", "at least 5s"),
        ("store: { connections: 0 }", "store.connections", "between 1 and 100"),
        ("store: { node_id: \"a b\" }", "store.node_id", "without spaces"),
    ])
    func badStoreSettingsAreRefused(_ yaml: String, _ path: String, _ reason: String) {
        #expect {
            try ConfigurationLoader.load(file: nil, yaml: yaml, environment: [:])
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains(reason) && !"\(error)".contains(":pw@")
        }
    }
}
