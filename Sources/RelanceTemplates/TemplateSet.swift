import Foundation
import Mustache
import RelanceCore

/// An error in a template or in rendering one: names the template and what is wrong.
public struct TemplateError: Error, CustomStringConvertible, Sendable {
    public var template: String
    public var message: String

    public init(template: String, message: String) {
        self.template = template
        self.message = message
    }

    public var description: String { "\(template): \(message)" }
}

public struct RenderedEmail: Sendable, Hashable {
    public var subject: String
    public var text: String
    public var html: String
}

public struct RenderedSMS: Sendable, Hashable {
    public var text: String
}

/// The templates of every locale and stage, loaded and parsed once; immutable afterwards (a reload
/// builds a new set and swaps it whole).
///
/// Layout: `<root>/<locale>/<stage>/{email.subject,email.txt,email.html,sms.txt}.mustache` and
/// partials in `<root>/<locale>/partials/<name>.mustache`. Lookups fall back `fr-FR → fr → default`.
public struct TemplateSet: Sendable {
    public static let emailParts = ["email.subject", "email.txt", "email.html"]
    public static let smsParts = ["sms.txt"]

    public let root: String
    public let defaultLocale: String
    /// Parsed templates by relative name, e.g. `fr/reminder_1/email.txt`.
    let templates: [String: MustacheTemplate]
    /// Partials by locale directory then partial name (`footer.txt`).
    let partials: [String: [String: MustacheTemplate]]
    /// Partial names each template (or partial) refers to.
    let references: [String: [String]]
    /// Templates and partials that `RenderCache` may fill (by relative name): their author set no
    /// content type of their own, and their text has no marker character.
    let fillable: Set<String>
    /// What `resolveWithPartials` found, per stage, part and locale (the set never changes).
    let resolved = Memo<ResolvedKey, Result<Resolved, any Error>>(limit: 4096)
    /// Outputs per shape (see `RenderCache`).
    let cache = RenderCache()

    struct Resolved: Sendable {
        var name: String
        var template: MustacheTemplate
        var library: MustacheLibrary
        /// The template and every partial it needs may be filled by the cache.
        var fillable: Bool
    }

    public init(directory: String, defaultLocale: String) throws {
        self.root = directory
        self.defaultLocale = defaultLocale
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw TemplateError(template: directory, message: "template directory does not exist")
        }
        var templates: [String: MustacheTemplate] = [:]
        var partials: [String: [String: MustacheTemplate]] = [:]
        var references: [String: [String]] = [:]
        var fillable: Set<String> = []
        for locale in try fm.contentsOfDirectory(atPath: directory).sorted() {
            let localeDir = directory + "/" + locale
            guard fm.fileExists(atPath: localeDir, isDirectory: &isDir), isDir.boolValue else { continue }
            for sub in try fm.contentsOfDirectory(atPath: localeDir).sorted() {
                let subDir = localeDir + "/" + sub
                guard fm.fileExists(atPath: subDir, isDirectory: &isDir), isDir.boolValue else { continue }
                for file in try fm.contentsOfDirectory(atPath: subDir).sorted() where file.hasSuffix(".mustache") {
                    let name = String(file.dropLast(".mustache".count))
                    let relative = "\(locale)/\(sub)/\(name)"
                    let (template, refs, canFill) = try Self.load(
                        path: subDir + "/" + file, relative: relative, text: name.hasSuffix(".txt") || name.hasSuffix(".subject"))
                    references[relative] = refs
                    if canFill { fillable.insert(relative) }
                    if sub == "partials" { partials[locale, default: [:]][name] = template } else { templates[relative] = template }
                }
            }
        }
        self.templates = templates
        self.partials = partials
        self.references = references
        self.fillable = fillable
    }

    static func load(path: String, relative: String, text: Bool) throws -> (MustacheTemplate, [String], fillable: Bool) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TemplateError(template: relative, message: "cannot be read: \(error.localizedDescription)")
        }
        guard var source = String(validating: data, as: UTF8.self) else { throw TemplateError(template: relative, message: "is not valid UTF-8") }
        if source.contains("{{>*") || source.contains("{{> *") {
            throw TemplateError(template: relative, message: "dynamic partials ({{>*name}}) are not supported")
        }
        // Plain-text templates (and text partials, which start in HTML mode again) must not be
        // HTML-escaped: the pragma is added here so authors cannot forget it. HTML ones escape
        // with `HTMLEscaping`. The pragma's line is standalone (left out of the output); a syntax
        // error's line number is the author's.
        var added = 0
        let fillable = !source.contains("CONTENT_TYPE") && !source.contains(RenderCache.Marker.open) && !source.contains(RenderCache.Marker.close)
        if !source.contains("CONTENT_TYPE") {
            _ = HTMLEscaping.registered
            source = "{{% CONTENT_TYPE: \(text ? "TEXT" : HTMLEscaping.name)}}\n" + source
            added = 1
        }
        let refs = partialReferences(in: source)
        do {
            return (try MustacheTemplate(string: source), refs, fillable)
        } catch let error as MustacheTemplate.ParserError {
            throw TemplateError(
                template: relative,
                message: "syntax error at line \(error.context.lineNumber - added), column \(error.context.columnNumber): \(error.error)")
        } catch {
            throw TemplateError(template: relative, message: "syntax error: \(error)")
        }
    }

    static func partialReferences(in source: String) -> [String] {
        var names: [String] = []
        var rest = Substring(source)
        while let open = rest.range(of: "{{>") {
            rest = rest[open.upperBound...]
            guard let close = rest.range(of: "}}") else { break }
            let name = rest[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            if !names.contains(name) { names.append(name) }
            rest = rest[close.upperBound...]
        }
        return names
    }

    /// The locale directories that exist, in lookup order for `locale`.
    func chain(for locale: String) -> [String] {
        LocaleRules.chain(locale, fallback: defaultLocale)
    }

    /// The partial `name` as seen from `locale`, following the fallback chain.
    func partial(_ name: String, locale: String) -> MustacheTemplate? {
        for candidate in chain(for: locale) { if let p = partials[candidate]?[name] { return p } }
        return nil
    }

    /// Finds `stage/part` for `locale` along the fallback chain; returns its relative name.
    func resolve(stage: String, part: String, locale: String) -> String? {
        for candidate in chain(for: locale) where templates["\(candidate)/\(stage)/\(part)"] != nil {
            return "\(candidate)/\(stage)/\(part)"
        }
        return nil
    }

    struct ResolvedKey: Hashable, Sendable {
        var stage: String
        var part: String
        var locale: String
    }

    /// The template `stage/part` for `locale` with the library of the partials it needs, found
    /// along the fallback chains.
    func resolveWithPartials(stage: String, part: String, locale: String) throws -> Resolved {
        guard let name = resolve(stage: stage, part: part, locale: locale), let template = templates[name] else {
            throw TemplateError(
                template: "\(stage)/\(part)",
                message: "no template for locale \(locale) (looked in \(chain(for: locale).map { "\($0)/\(stage)/" }.joined(separator: ", ")))")
        }
        var library = MustacheLibrary()
        var canFill = fillable.contains(name)
        var pending = references[name] ?? []
        var seen: Set<String> = []
        while let partialName = pending.popLast() {
            guard seen.insert(partialName).inserted else { continue }
            guard let partial = partial(partialName, locale: locale) else {
                throw TemplateError(
                    template: name, message: "partial '\(partialName)' not found in \(chain(for: locale).map { "\($0)/partials/" }.joined(separator: ", "))")
            }
            library.register(partial, named: partialName)
            for dir in chain(for: locale) where partials[dir]?[partialName] != nil {
                pending += references["\(dir)/partials/\(partialName)"] ?? []
                canFill = canFill && fillable.contains("\(dir)/partials/\(partialName)")
                break
            }
        }
        return Resolved(name: name, template: template, library: library, fillable: canFill)
    }

    /// Renders one template strictly (an unknown variable or a missing partial is an error), with
    /// frames shared by every part of a message.
    /// `cached`: false renders with swift-mustache alone (what the cache's tests compare with).
    func render(stage: String, part: String, frames: Frame, log: LookupLog, locale: String, cached: Bool = true) throws -> String {
        log.reset()
        let key = ResolvedKey(stage: stage, part: part, locale: locale)
        let found = resolved.value(key) { key in
            Result { try resolveWithPartials(stage: key.stage, part: key.part, locale: key.locale) }
        }
        let resolved = try found.get()
        if cached, resolved.fillable, let output = cache.render(key, frames: frames, log: log, template: resolved.template, library: resolved.library) {
            return output
        }
        log.reset()
        let (name, template, library) = (resolved.name, resolved.template, resolved.library)
        let output = template.render(frames, library: library)
        let missing = log.unresolvedNames()
        if !missing.isEmpty {
            throw TemplateError(
                template: name,
                message: "unknown variable\(missing.count > 1 ? "s" : "") \(missing.map { "'\($0)'" }.joined(separator: ", ")): nothing was sent"
                    + (missing.contains { $0.hasPrefix("vars.") } ? " (declare template variables under templates.vars, each with a default)" : ""))
        }
        return output
    }

    public func renderEmail(_ reminder: Reminder, settings: ContextSettings, now: Date, history: LetterHistory? = nil) throws -> RenderedEmail {
        try renderEmail(reminder, settings: settings, now: now, history: history, cached: true)
    }

    func renderEmail(_ reminder: Reminder, settings: ContextSettings, now: Date, history: LetterHistory?, cached: Bool) throws -> RenderedEmail {
        let log = LookupLog()
        let frames = Frame.root(TemplateContext.Source(reminder, channel: .email, settings: settings, now: now, history: history), log: log)
        let locale = reminder.debtor.locale
        let subject = try render(stage: reminder.stage, part: "email.subject", frames: frames, log: log, locale: locale, cached: cached)
            .trimmingWhitespace()
        if subject.isEmpty { throw TemplateError(template: "\(reminder.stage)/email.subject", message: "renders an empty subject") }
        if subject.contains(where: { $0.isNewline }) {
            throw TemplateError(template: "\(reminder.stage)/email.subject", message: "renders a subject on several lines")
        }
        let text = try render(stage: reminder.stage, part: "email.txt", frames: frames, log: log, locale: locale, cached: cached)
        let html = try render(stage: reminder.stage, part: "email.html", frames: frames, log: log, locale: locale, cached: cached)
        return RenderedEmail(subject: subject, text: text, html: html)
    }

    public func renderSMS(_ reminder: Reminder, settings: ContextSettings, now: Date, history: LetterHistory? = nil) throws -> RenderedSMS {
        try renderSMS(reminder, settings: settings, now: now, history: history, cached: true)
    }

    func renderSMS(_ reminder: Reminder, settings: ContextSettings, now: Date, history: LetterHistory?, cached: Bool) throws -> RenderedSMS {
        let log = LookupLog()
        let frames = Frame.root(TemplateContext.Source(reminder, channel: .sms, settings: settings, now: now, history: history), log: log)
        let text = try render(stage: reminder.stage, part: "sms.txt", frames: frames, log: log, locale: reminder.debtor.locale, cached: cached)
            .trimmingWhitespace()
        if text.isEmpty { throw TemplateError(template: "\(reminder.stage)/sms.txt", message: "renders an empty message") }
        return RenderedSMS(text: text)
    }

    /// Checks that every stage has every part in `defaultLocale` (the last fallback), and that each
    /// template renders against sample reminders of both debtor kinds in each of its locales.
    public func check(stages: [String], settings: ContextSettings, now: Date) -> [TemplateError] {
        var problems: [TemplateError] = []
        let localeDirs = Set(templates.keys.compactMap { $0.split(separator: "/").first.map(String.init) })
        for stage in stages {
            for part in Self.emailParts + Self.smsParts where resolve(stage: stage, part: part, locale: defaultLocale) == nil {
                problems.append(
                    TemplateError(template: "\(defaultLocale)/\(stage)/\(part)", message: "missing (every stage needs every part in the default locale)"))
            }
        }
        for locale in localeDirs.sorted() where LocaleRules.isKnown(locale) {
            for stage in stages {
                for kind in [DebtorKind.consumer, .business] {
                    // Both sides of every optional section: several invoices, a payment URL and an
                    // attachment; then one invoice and none of them.
                    for full in [true, false] {
                        let sample = Self.sample(stage: stage, locale: locale, kind: kind, full: full)
                        // With swift-mustache itself: the samples' shapes are not the messages', and
                        // caching them would only cost start-up time.
                        do { _ = try renderEmail(sample, settings: settings, now: now, history: nil, cached: false) } catch let e as TemplateError {
                            problems.append(e)
                        } catch {}
                        do { _ = try renderSMS(sample, settings: settings, now: now, history: nil, cached: false) } catch let e as TemplateError {
                            problems.append(e)
                        } catch {}
                    }
                }
            }
        }
        var unique: [TemplateError] = []
        for p in problems where !unique.contains(where: { $0.description == p.description }) { unique.append(p) }
        return unique
    }

    static func sample(stage: String, locale: String, kind: DebtorKind, full: Bool) -> Reminder {
        var reminder = Reminder(
            id: "CHECK-1", stage: stage, channels: [.email, .sms],
            debtor: Debtor(
                id: "C-CHECK", name: "Camille Exemple", email: "camille@example.org", phone: "+33612345678", country: "FR", locale: locale,
                timezone: "Europe/Paris", kind: kind),
            invoices: [
                Invoice(
                    number: "F-CHECK-1", amount: "1234.50", currency: "EUR", issuedOn: CivilDate(year: 2026, month: 1, day: 5),
                    dueOn: CivilDate(year: 2026, month: 2, day: 4)),
                Invoice(
                    number: "F-CHECK-2", amount: "80.00", currency: "EUR", issuedOn: CivilDate(year: 2026, month: 1, day: 12),
                    dueOn: CivilDate(year: 2026, month: 2, day: 11)),
            ],
            paymentURL: "https://pay.example.org/CHECK", attachments: ["/srv/invoices/F-CHECK-1.pdf"])
        if !full {
            reminder.invoices.removeLast()
            reminder.paymentURL = nil
            reminder.attachments = []
        }
        return reminder
    }
}
