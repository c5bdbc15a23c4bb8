import CCurl
import DequeModule
import Foundation
import Synchronization

/// One kind of transfer a `CurlMultiLoop` drives: an easy handle set up once, prepared for each
/// job, and read once libcurl is done with it. Used on the loop's thread only.
protocol CurlSlot: AnyObject, SendableMetatype {
    associatedtype Job: Sendable
    associatedtype Outcome: Sendable

    var easy: CurlEasy { get }
    /// Sets the handle up for `job`.
    func prepare(_ job: Job) throws
    /// What the finished transfer of `job` came to.
    func outcome(_ code: CURLcode, for job: Job) -> Outcome
    /// What a job that could not start gets (the loop is shut down, libcurl refused the handle).
    static func refused(_ error: CurlError) -> Outcome
}

/// The thread that drives a multi handle: one thread for every transfer of a client (HTTP requests,
/// SMTP messages), woken by `curl_multi_poll` when any of its connections has something to say.
/// Connections stay open in the multi handle's cache and are reused by the next job, whichever slot
/// runs it; at most one transfer per slot is under way, the other jobs wait their turn in order.
/// Jobs come in through `submit` (any thread); the loop thread alone touches the multi handle and
/// the slots.
final class CurlMultiLoop<Slot: CurlSlot>: @unchecked Sendable {
    // @unchecked: `multi`, `slots`, `running` and `free` are used on the loop thread only (and in
    // init and deinit, when no other thread can see the loop); `waiting` is behind its mutex.
    typealias Continuation = CheckedContinuation<Slot.Outcome, Never>

    private let multi: UnsafeMutableRawPointer
    private let slots: [Slot]
    /// The job each slot runs, with its continuation.
    private var running: [(job: Slot.Job, continuation: Continuation)?]
    private var free: [Int]
    private let waiting = Mutex(Waiting())

    /// The jobs not started yet, and what `submit` needs to know of the loop thread.
    struct Waiting {
        var queue: Deque<(Slot.Job, Continuation)> = []
        var stopping = false
        /// The loop is in (or about to enter) `curl_multi_poll` with nothing queued.
        var asleep = false
        /// A wakeup was sent since the loop went to sleep: the next `submit` need not send another.
        var woken = false

        /// Whether the caller must wake the loop (it sleeps and nobody woke it yet).
        mutating func needsWakeup() -> Bool {
            guard asleep && !woken else { return false }
            woken = true
            return true
        }
    }

    /// Milliseconds `curl_multi_poll` sleeps with nothing to do (libcurl's own timers cut it short).
    private let idleWait: Int32

    /// `slots`: one per transfer allowed at once, and as many connections kept open.
    init(slots: [Slot], name: String, idleWait: Duration = .seconds(1)) throws {
        CurlGlobal.ensureInitialised()
        self.idleWait = Int32(clamping: idleWait.components.seconds * 1000 + idleWait.components.attoseconds / 1_000_000_000_000_000)
        guard let multi = curl_multi_init() else { throw CurlError(code: -1, message: "curl_multi_init failed") }
        self.multi = multi
        let count = max(1, slots.count)
        for (index, slot) in slots.enumerated() {
            try slot.easy.set(CURLOPT_PRIVATE, pointer: UnsafeMutableRawPointer(bitPattern: index + 1))
        }
        self.slots = slots
        running = Array(repeating: nil, count: slots.count)
        free = Array((0..<slots.count).reversed())
        _ = CCurl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, count)
        _ = CCurl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, count)
        // Keep every connection when the load dips: by default the cache holds four per handle
        // currently added, and handles are added only while they run.
        _ = CCurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, count)
        _ = CCurl_multi_setopt_long(multi, CURLMOPT_PIPELINING, 2)  // CURLPIPE_MULTIPLEX (HTTP/2)
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    deinit { curl_multi_cleanup(multi) }

    func submit(_ job: Slot.Job, _ continuation: Continuation) {
        let (refused, wake) = waiting.withLock { state -> (Bool, Bool) in
            guard !state.stopping else { return (true, false) }
            state.queue.append((job, continuation))
            return (false, state.needsWakeup())
        }
        if refused {
            continuation.resume(returning: Slot.refused(CurlError(code: -1, message: "the transport is shut down")))
            return
        }
        // One wakeup per sleep: under load the loop is mostly awake and finds the job itself (each
        // wakeup is a write to libcurl's socket pair and one more pass over every transfer).
        if wake { curl_multi_wakeup(multi) }
    }

    /// Stops the loop once the transfers under way and the jobs waiting are done.
    func shutdown() {
        waiting.withLock { $0.stopping = true }
        curl_multi_wakeup(multi)
    }

    private func run() {
        var active: Int32 = 0
        while true {
            let (stop, started) = startWaiting()
            curl_multi_perform(multi, &active)
            finishDone()
            if stop && free.count == slots.count && !started { return }
            // A slot just freed and a job waiting for one: start it now rather than after the
            // next socket event (or the poll's timeout).
            // Otherwise sleep until a socket event, a timer or a wakeup; the flag is set under the
            // lock `submit` takes, so a job queued after this check always wakes the poll.
            let sleep = waiting.withLock { state -> Bool in
                if !free.isEmpty && !state.queue.isEmpty { return false }
                state.asleep = true
                state.woken = false
                return true
            }
            guard sleep else { continue }
            curl_multi_poll(multi, nil, 0, idleWait, nil)
            waiting.withLock { $0.asleep = false }
        }
    }

    /// Starts as many waiting jobs as there are free slots.
    private func startWaiting() -> (stopping: Bool, started: Bool) {
        var started = false
        while !free.isEmpty {
            guard let (job, continuation) = waiting.withLock({ $0.queue.popFirst() }) else { break }
            let index = free.removeLast()
            let slot = slots[index]
            do {
                try slot.prepare(job)
            } catch {
                free.append(index)
                continuation.resume(returning: Slot.refused((error as? CurlError) ?? CurlError(code: -1, message: "\(error)")))
                continue
            }
            running[index] = (job, continuation)
            let added = curl_multi_add_handle(multi, slot.easy.handle)
            guard added == CURLM_OK else {
                running[index] = nil
                free.append(index)
                continuation.resume(returning: Slot.refused(CurlError(code: Int(added.rawValue), message: String(cString: curl_multi_strerror(added)))))
                continue
            }
            started = true
        }
        return (waiting.withLock { $0.stopping && $0.queue.isEmpty }, started)
    }

    /// Answers every finished transfer and frees its slot.
    private func finishDone() {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle else { continue }
            let code = message.pointee.data.result
            var tag: UnsafeMutablePointer<CChar>?
            _ = CCurl_easy_getinfo_string(handle, CURLINFO_PRIVATE, &tag)
            curl_multi_remove_handle(multi, handle)
            guard let tag, case let index = Int(bitPattern: UnsafeRawPointer(tag)) - 1, slots.indices.contains(index), let (job, continuation) = running[index]
            else { continue }
            running[index] = nil
            let outcome = slots[index].outcome(code, for: job)
            free.append(index)
            continuation.resume(returning: outcome)
        }
    }
}
