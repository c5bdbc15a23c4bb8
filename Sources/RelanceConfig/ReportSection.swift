import Foundation
import RelanceCore

extension RelanceConfiguration {
    /// `report:` — the report the daemon mails on a schedule (`relance report --mail-to` by hand).
    public struct Report: Sendable, Decodable {
        /// When the daemon mails the report (`weekly mon 07:00`…, `off`), in `defaults.timezone`;
        /// each run is a report as of that day.
        public var schedule = Schedule.off
        /// Who gets it (`Name <address>`); required when a schedule is set.
        public var mailTo: String? = nil
        /// The page's language (default: `defaults.locale`).
        public var locale: String? = nil
        /// The DSO and CEI period, 1 to 12 months.
        public var months = 3
        public var disputed = ReceivablesReport.Options.Disputed.included
        /// How often the daemon recomputes the business gauges on `/metrics` (at least a minute).
        public var metricsInterval = ConfigDuration(.seconds(900))

        enum CodingKeys: String, CodingKey, CaseIterable {
            case schedule, locale, months, disputed
            case mailTo = "mail_to"
            case metricsInterval = "metrics_interval"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.section(CodingKeys.self)
            schedule = try c.schedule(.schedule, or: schedule)
            mailTo = try c.value(.mailTo)
            locale = try c.value(.locale)
            months = try c.value(.months, or: months)
            let disputedText: String? = try c.value(.disputed)
            metricsInterval = try c.value(.metricsInterval, or: metricsInterval)
            // Checked once every key is read (the key catalogue walks this code to find them).
            if let mailTo, Mailbox(parsing: mailTo) == nil {
                throw c.invalid(.mailTo, "'\(mailTo.debugQuoted)' is not a valid mailbox (Name <address@domain>, or an address)")
            }
            if schedule != .off && mailTo == nil { throw c.invalid(.mailTo, "a report.schedule needs report.mail_to: who gets the report") }
            guard (1...12).contains(months) else { throw c.invalid(.months, "between 1 and 12") }
            guard metricsInterval.value >= .seconds(60) else { throw c.invalid(.metricsInterval, "at least 1m") }
            if let disputedText {
                guard let value = ReceivablesReport.Options.Disputed(rawValue: disputedText) else { throw c.invalid(.disputed, "included or excluded") }
                disputed = value
            }
        }
    }
}
