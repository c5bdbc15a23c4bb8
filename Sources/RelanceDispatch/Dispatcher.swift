import Foundation
import Logging
import Metrics
import RelanceConfig
import RelanceCore
import RelanceStore
import Synchronization

/// Sends what is due: asks the ledger for due deliveries, lets the `DispatchStateMachine` decide
/// which start, runs each as a `DeliveryRun` in a discarding task group, and reports its end back
/// to the machine. The machine decides; this type only performs its actions.
public final class Dispatcher: Sendable {
    let ledger: any LedgerStore
    /// The settings in force (a reload swaps them whole); each delivery takes one snapshot.
    let settings: @Sendable () -> DispatchSettings
    let logger: Logger
    let clock: @Sendable () -> Date
    let nudge = Nudge()
    private let machine: Mutex<(state: DispatchStateMachine, generation: Int)>
    private let counters = Mutex<(sent: Int, failed: Int, retried: Int)>((0, 0, 0))
    /// Counts finished deliveries: one that finishes can add work (a fallback), so a pass is over
    /// only if none finished since the ledger was last read.
    private let finishedCount = Atomic<Int>(0)
    /// Set when the ledger refuses a write: claiming and sending stop until it accepts one again.
    private let storeFault = Mutex<String?>(nil)

    public init(ledger: any LedgerStore, settings: @escaping @Sendable () -> DispatchSettings, logger: Logger, clock: @escaping @Sendable () -> Date) {
        self.ledger = ledger
        self.settings = settings
        self.logger = logger
        self.clock = clock
        let current = settings()
        self.machine = Mutex((DispatchStateMachine(current.flow(onePass: false)), current.generation))
    }

    /// Wake the loop: new deliveries were ingested, or settings changed.
    public func wake() { nudge.signal() }

    public var totals: (sent: Int, failed: Int, retried: Int) { counters.withLock { $0 } }

    /// The deliveries whose transport call is under way.
    public var inFlightKeys: [DeliveryKey] { machine.withLock { $0.state.inFlightKeys } }

    /// Runs until `shouldStop` says so; then stops claiming and waits for in-flight sends.
    /// With `untilIdle` (`serve --once`): one pass over what is due when the pass starts, each
    /// delivery tried at most once (a transient failure waits for the next pass); returns once
    /// nothing of it is left and nothing is in flight.
    public func run(untilIdle: Bool, shouldStop: @escaping @Sendable () -> Bool) async {
        let passStart = clock()
        let current = settings()
        machine.withLock {
            $0.state.reconfigure(current.flow(onePass: untilIdle))
            $0.state.beginRun()
            $0.generation = current.generation
        }
        var lastExpiry = Date.distantPast
        await withDiscardingTaskGroup { group in
            while true {
                if shouldStop() { machine.withLock { $0.state.stop() } }
                if machine.withLock({ $0.state.stopping && $0.state.isDrained }) { break }
                switch await storeFaultState() {
                case .none: break
                case .holding:
                    if untilIdle && machine.withLock({ $0.state.isDrained }) { return }
                    await nudge.wait(upTo: .seconds(1))
                    continue
                }
                let now = untilIdle ? passStart : clock()
                if now.timeIntervalSince(lastExpiry) >= 1 {
                    lastExpiry = now
                    guard await housekeeping(now: now) else { continue }
                }
                reconfigureIfReloaded(onePass: untilIdle)
                let finishedBefore = finishedCount.load(ordering: .sequentiallyConsistent)
                let due = await dueCandidates(now: now)
                let actions = machine.withLock { $0.state.candidates(due.map(\.candidate), now: clock()) }
                let byKey = Dictionary(due.map { ($0.candidate.key, $0) }, uniquingKeysWith: { first, _ in first })
                var started = 0
                var wake: Date?
                for action in actions {
                    switch action {
                    case .start(let list):
                        for candidate in list { launch(candidate, byKey[candidate.key], in: &group) }
                        started += list.count
                    case .probe(let channel, let candidate):
                        logger.notice("probing the paused provider", metadata: ["relance.delivery.channel": "\(channel.rawValue)"])
                        launch(candidate, byKey[candidate.key], in: &group)
                        started += 1
                    case .sleep(let until): wake = until
                    case .idle: break
                    }
                }
                if started > 0 { continue }
                let inFlight = machine.withLock { $0.state.inFlightCount }
                if untilIdle && due.isEmpty && inFlight == 0 {
                    // Over only if nothing finished meanwhile (a finished delivery may have added a fallback).
                    if finishedCount.load(ordering: .sequentiallyConsistent) == finishedBefore { break }
                    continue
                }
                if untilIdle && inFlight == 0 && wake == nil { continue }  // what was due is left for the next pass
                await nudge.wait(upTo: await timeout(until: wake, inFlight: inFlight))
            }
        }
    }

    /// A due delivery and what the state machine needs of it.
    struct DueCandidate: Sendable {
        var due: Ledger.Due
        var candidate: DispatchStateMachine.Candidate
    }

    func dueCandidates(now: Date) async -> [DueCandidate] {
        let room = machine.withLock { $0.state.room }
        guard room > 0 else { return [] }
        do {
            // As many as can start, plus one: a channel waiting for a rate token (or its paused
            // provider) gives the walk one delivery whose refusal says when to look again, and it
            // must not take the place of one that can start.
            let prefetch = Ledger.Prefetch(
                contactsSince: now.addingTimeInterval(-PolicyStep.contactHistory), groupLimit: settings().policy.group ? DeliveryRun.groupLimit : nil,
                deliveries: room + 1)
            let dueRoom = DueRoom(
                queue: { [self] queue in self.machine.withLock { $0.state.room(inQueue: queue) } },
                channel: { [self] channel in self.machine.withLock { $0.state.room(onChannel: channel, now: self.clock()) } })
            let due = try await ledger.due(now: now, limit: room + 1, prefetch: prefetch, room: dueRoom) { [self] key, debtor in
                self.machine.withLock { $0.state.isExcluded(key, debtor: debtor) }
            }
            return due.map { DueCandidate(due: $0, candidate: .init(key: $0.key, queue: $0.queue, debtor: $0.reminder.debtor.id)) }
        } catch {
            fault("cannot read due deliveries", error)
            return []
        }
    }

    /// Starts one admitted delivery; its end is reported to the state machine exactly once.
    func launch(_ candidate: DispatchStateMachine.Candidate, _ item: DueCandidate?, in group: inout DiscardingTaskGroup) {
        guard let item else {
            // Cannot happen (the machine admits only what it was given); never leave a key started.
            log(machine.withLock { $0.state.finished(candidate.key, .notAttempted, now: clock()) }, key: candidate.key)
            return
        }
        group.addTask {
            let snapshot = self.settings()
            let run = DeliveryRun(due: item.due, settings: snapshot, ledger: self.ledger, logger: self.logger, clock: self.clock)
            let result = await run.run()
            if let fault = result.storeFault { self.fault(fault.what, fault.error) }
            self.count(result.counts)
            let finish = self.machine.withLock { $0.state.finished(item.due.key, result.report, now: self.clock()) }
            self.log(finish, key: item.due.key)
            self.finishedCount.add(1, ordering: .sequentiallyConsistent)
            self.nudge.signal()
        }
    }

    func log(_ finish: DispatchStateMachine.Finish, key: DeliveryKey) {
        switch finish {
        case .done: break
        case .breakerOpened(let channel):
            logger.error("provider paused after repeated failures (circuit breaker open)", metadata: ["relance.delivery.channel": "\(channel.rawValue)"])
        case .breakerClosed(let channel):
            logger.notice("provider answers again: circuit breaker closed", metadata: ["relance.delivery.channel": "\(channel.rawValue)"])
        case .unknownKey:
            logger.critical("a delivery finished that the dispatcher did not start", metadata: ["relance.delivery": "\(key)"])
        }
    }

    func count(_ counts: DeliveryRun.Counts) {
        counters.withLock {
            $0.sent += counts.sent
            $0.failed += counts.failed
            $0.retried += counts.retried
        }
    }

    /// Puts a reloaded configuration in force in the state machine.
    func reconfigureIfReloaded(onePass: Bool) {
        let current = settings()
        machine.withLock {
            guard $0.generation != current.generation else { return }
            $0.state.reconfigure(current.flow(onePass: onePass))
            $0.generation = current.generation
        }
    }

    /// Expiry and the end of pauses, once a second. False when the ledger refused the writes.
    func housekeeping(now: Date) async -> Bool {
        do {
            try await ledger.expireOverdue(now: now)
            if try await ledger.resumePaused(now: now) > 0 { nudge.signal() }
            return true
        } catch {
            fault("the ledger refuses writes: claiming and sending stop until it accepts them", error)
            return false
        }
    }

    func fault(_ what: String, _ error: any Error) {
        logger.error("\(what)", metadata: ["error": "\(error)"])
        storeFault.withLock { $0 = "\(error)" }
    }

    enum StoreFaultState { case none, holding }

    /// While the ledger refuses writes, nothing is claimed or sent; once nothing is in flight it
    /// is probed with a write at every look (once a second).
    func storeFaultState() async -> StoreFaultState {
        guard storeFault.withLock({ $0 }) != nil else { return .none }
        guard machine.withLock({ $0.state.isDrained }), await ledger.writeProblem(now: clock()) == nil else { return .holding }
        storeFault.withLock { $0 = nil }
        logger.notice("the ledger accepts writes again: sending resumes")
        return .none
    }

    /// How long to wait when nothing started: until a held-back provider may go again, else until
    /// the next due time, at most a second (a finish or new work wakes the loop sooner).
    func timeout(until wake: Date?, inFlight: Int) async -> Duration {
        if let wake { return .milliseconds(Int64(max(5, min(1000, wake.timeIntervalSince(clock()) * 1000)))) }
        guard inFlight == 0 else { return .seconds(1) }
        do {
            guard let next = try await ledger.nextDueDate(now: clock()) else { return .seconds(1) }
            return .milliseconds(Int64(max(10, min(1000, next.timeIntervalSince(clock()) * 1000))))
        } catch {
            fault("cannot read the next due time", error)
            return .seconds(1)
        }
    }
}

extension Dispatcher {
    /// A dispatcher with fixed settings (no reload): one-off passes, tests, embedding.
    public convenience init(ledger: any LedgerStore, components: Components, transports: Transports, logger: Logger, clock: @escaping @Sendable () -> Date) {
        let settings = DispatchSettings(generation: 0, components: components, transports: transports)
        self.init(ledger: ledger, settings: { settings }, logger: logger, clock: clock)
    }
}
