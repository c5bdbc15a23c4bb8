extension ReportHTML {
    /// The report's SVG charts: axes with ticks and labels, every data mark with a `<title>` (its
    /// value on hover), and colours from one sequential palette (light to dark) with dash
    /// patterns for lines, so that they read in greyscale.
    enum Charts {
        /// Light to dark: each bucket older than the one before is darker.
        static let palette = ["#c6dbef", "#9ecae1", "#6baed6", "#2171b5", "#08306b"]
        static let width = 680.0

        /// The aging on the report's date as one bar, stacked by bucket, with an amount axis.
        static func aging(_ f: ReceivablesReport.CurrencyFigures, _ t: Words) -> String {
            let buckets = ReceivablesReport.Bucket.allCases
            let total = buckets.reduce(Int64(0)) { $0 + (f.aging[$1]?.amount ?? 0) }
            let (left, right, top) = (16.0, 36.0, 10.0)
            let plot = width - left - right
            let axis = Axis(maximum: total)
            var svg = open(height: 120, label: t.agingTitle(f.headline.date))
            var x = left
            for (i, bucket) in buckets.enumerated() {
                let a = f.aging[bucket] ?? .init()
                guard a.amount > 0 else { continue }
                let w = plot * Double(a.amount) / Double(axis.top)
                svg += "<rect class=\"mark\" x=\"\(n(x))\" y=\"\(n(top))\" width=\"\(n(w))\" height=\"36\" fill=\"\(palette[i])\" stroke=\"#fff\">"
                svg += "<title>\(escape(t.bucketName(bucket))): \(escape(t.money(a.amount, f.currency))) (\(a.count))</title></rect>"
                x += w
            }
            svg += "<line x1=\"\(n(left))\" y1=\"\(n(top + 42))\" x2=\"\(n(left + plot))\" y2=\"\(n(top + 42))\" stroke=\"#1a1a1a\"/>"
            for tick in axis.ticks {
                let tx = left + plot * Double(tick) / Double(axis.top)
                svg += "<line x1=\"\(n(tx))\" y1=\"\(n(top + 42))\" x2=\"\(n(tx))\" y2=\"\(n(top + 46))\" stroke=\"#1a1a1a\"/>"
                svg += "<text x=\"\(n(tx))\" y=\"\(n(top + 58))\" text-anchor=\"middle\">\(escape(t.compact(tick, f.currency)))</text>"
            }
            // The legend: each bucket's swatch, name and amount.
            for (i, bucket) in buckets.enumerated() {
                let lx = left + Double(i) * plot / Double(buckets.count)
                svg += "<rect x=\"\(n(lx))\" y=\"\(n(top + 72))\" width=\"12\" height=\"12\" fill=\"\(palette[i])\" stroke=\"#1a1a1a\" stroke-width=\"0.5\"/>"
                svg += "<text x=\"\(n(lx + 16))\" y=\"\(n(top + 82))\">\(escape(t.bucketName(bucket)))</text>"
                svg += "<text x=\"\(n(lx + 16))\" y=\"\(n(top + 96))\">\(escape(t.compact(f.aging[bucket]?.amount ?? 0, f.currency)))</text>"
            }
            return figure(svg + "</svg>", caption: t.agingTitle(f.headline.date))
        }

        /// Receivables at each month end, stacked: current (light) under overdue (dark).
        static func monthEnds(_ f: ReceivablesReport.CurrencyFigures, _ t: Words) -> String {
            let (left, right, top, bottom) = (60.0, 10.0, 10.0, 40.0)
            let height = 220.0
            let plotW = width - left - right
            let plotH = height - top - bottom
            let axis = Axis(maximum: f.trend.map(\.totals.receivables).max() ?? 0)
            var svg = open(height: height, label: t.monthEndsTitle) + yAxis(axis, left: left, top: top, plotW: plotW, plotH: plotH) { t.compact($0, f.currency) }
            let slot = plotW / Double(max(1, f.trend.count))
            for (i, point) in f.trend.enumerated() {
                let x = left + Double(i) * slot + slot * 0.15
                let w = slot * 0.7
                var base = top + plotH
                for (value, colour, name) in [(point.totals.current, palette[1], t.current), (point.totals.overdue, palette[4], t.overdue)] where value > 0 {
                    let h = plotH * Double(value) / Double(axis.top)
                    base -= h
                    svg += "<rect class=\"mark\" x=\"\(n(x))\" y=\"\(n(base))\" width=\"\(n(w))\" height=\"\(n(h))\" fill=\"\(colour)\">"
                    svg += "<title>\(point.date) — \(escape(name)): \(escape(t.money(value, f.currency)))</title></rect>"
                }
                svg += "<text x=\"\(n(x + w / 2))\" y=\"\(n(top + plotH + 14))\" text-anchor=\"middle\">\(t.month(point.date))</text>"
            }
            svg += legend([(palette[1], t.current, nil), (palette[4], t.overdue, nil)], x: left, y: height - 12, swatch: true)
            return figure(svg + "</svg>", caption: t.monthEndsTitle)
        }

        /// DSO simple, DSO countback and best possible DSO at each month end, as lines.
        static func dso(_ f: ReceivablesReport.CurrencyFigures, _ t: Words) -> String {
            let (left, right, top, bottom) = (60.0, 10.0, 10.0, 40.0)
            let height = 220.0
            let plotW = width - left - right
            let plotH = height - top - bottom
            let series: [(name: String, colour: String, dash: String?, values: [Double?])] = [
                (t.dsoSimple, palette[4], nil, f.trend.map(\.dsoSimple)),
                (t.dsoCountback, palette[3], "6 3", f.trend.map { Optional($0.dsoCountback) }),
                (t.bestPossibleDSO, palette[2], "2 3", f.trend.map(\.bestPossibleDSO)),
            ]
            let highest = series.flatMap { $0.values.compactMap { $0 } }.max() ?? 0
            let axis = Axis(maximum: Int64(highest.rounded(.up)))
            var svg = open(height: height, label: t.dsoTitle) + yAxis(axis, left: left, top: top, plotW: plotW, plotH: plotH) { "\($0)" }
            let slot = plotW / Double(max(1, f.trend.count))
            let x = { (i: Int) in left + slot * (Double(i) + 0.5) }
            let y = { (v: Double) in top + plotH - plotH * v / Double(axis.top) }
            for (i, point) in f.trend.enumerated() {
                svg += "<text x=\"\(n(x(i)))\" y=\"\(n(top + plotH + 14))\" text-anchor=\"middle\">\(t.month(point.date))</text>"
            }
            for s in series {
                // A line through the months that have a figure; a month without one breaks it.
                var runs: [[(Int, Double)]] = [[]]
                for (i, v) in s.values.enumerated() {
                    if let v { runs[runs.count - 1].append((i, v)) } else if !(runs.last?.isEmpty ?? true) { runs.append([]) }
                }
                for run in runs where run.count > 1 {
                    let points = run.map { "\(n(x($0.0))),\(n(y($0.1)))" }.joined(separator: " ")
                    svg += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"2\"\(s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>"
                }
                for (i, v) in s.values.enumerated() {
                    guard let v else { continue }
                    svg += "<circle class=\"mark\" cx=\"\(n(x(i)))\" cy=\"\(n(y(v)))\" r=\"3\" fill=\"\(s.colour)\">"
                    svg += "<title>\(f.trend[i].date) — \(escape(s.name)): \(t.days(v))</title></circle>"
                }
            }
            svg += legend(series.map { ($0.colour, $0.name, $0.dash) }, x: left, y: height - 12, swatch: false)
            return figure(svg + "</svg>", caption: t.dsoTitle)
        }

        /// Per dunning stage, what its reminders covered and what was paid within 7 and within 30
        /// days of them, as grouped bars (light to dark). Nil when every amount is zero.
        static func stages(_ f: ReceivablesReport.CurrencyFigures, _ t: Words) -> String? {
            let names = ReceivablesReport.ordered(stages: f.stages.keys)
            let bars = names.map { name -> (String, [(Int64, String, String)]) in
                let st = f.stages[name] ?? .init()
                return (name, [(st.covered, palette[1], t.covered), (st.window7.paid, palette[3], t.within(7)), (st.window30.paid, palette[4], t.within(30))])
            }
            let highest = bars.flatMap { $0.1.map(\.0) }.max() ?? 0
            guard highest > 0 else { return nil }
            let (left, right, top, bottom) = (60.0, 10.0, 10.0, 40.0)
            let height = 200.0
            let plotW = width - left - right
            let plotH = height - top - bottom
            let axis = Axis(maximum: highest)
            var svg = open(height: height, label: t.stagesTitle) + yAxis(axis, left: left, top: top, plotW: plotW, plotH: plotH) { t.compact($0, f.currency) }
            let slot = plotW / Double(max(1, bars.count))
            for (i, (name, values)) in bars.enumerated() {
                let x0 = left + Double(i) * slot + slot * 0.1
                let w = slot * 0.8 / Double(values.count)
                for (j, (value, colour, label)) in values.enumerated() where value > 0 {
                    let h = plotH * Double(value) / Double(axis.top)
                    svg += "<rect class=\"mark\" x=\"\(n(x0 + Double(j) * w))\" y=\"\(n(top + plotH - h))\" width=\"\(n(w))\" height=\"\(n(h))\" fill=\"\(colour)\">"
                    svg += "<title>\(escape(name)) — \(escape(label)): \(escape(t.money(value, f.currency)))</title></rect>"
                }
                svg += "<text x=\"\(n(x0 + slot * 0.4))\" y=\"\(n(top + plotH + 14))\" text-anchor=\"middle\">\(escape(name))</text>"
            }
            svg += legend([(palette[1], t.covered, nil), (palette[3], t.within(7), nil), (palette[4], t.within(30), nil)], x: left, y: height - 12, swatch: true)
            return figure(svg + "</svg>", caption: t.stagesTitle)
        }

        /// The groups of statuses the channel chart shows, light to dark.
        static let statusGroups: [(statuses: [String], colour: String)] = [
            (["pending", "paused", "sending", "unknown"], palette[0]),
            (["cancelled", "expired", "suppressed"], palette[1]),
            (["failed", "undelivered", "bounced"], palette[2]),
            (["sent"], palette[3]),
            (["delivered"], palette[4]),
        ]

        /// One bar per channel, its deliveries stacked by status group. Nil without deliveries.
        static func channels(_ channels: [ReceivablesReport.ChannelFigures], _ t: Words) -> String? {
            let shown = channels.filter { $0.total > 0 }
            guard !shown.isEmpty else { return nil }
            let (left, right, top) = (70.0, 36.0, 10.0)
            let plot = width - left - right
            let barH = 26.0
            let height = top + Double(shown.count) * (barH + 10) + 76
            let axis = Axis(maximum: Int64(shown.map(\.total).max() ?? 0))
            var svg = open(height: height, label: t.channelsTitle)
            for (i, channel) in shown.enumerated() {
                let y = top + Double(i) * (barH + 10)
                svg += "<text x=\"\(n(left - 6))\" y=\"\(n(y + barH / 2 + 4))\" text-anchor=\"end\">\(escape(channel.channel))</text>"
                var x = left
                for group in statusGroups {
                    let count = group.statuses.reduce(0) { $0 + (channel.statuses[$1] ?? 0) }
                    guard count > 0 else { continue }
                    let w = plot * Double(count) / Double(axis.top)
                    let detail = group.statuses.compactMap { s in channel.statuses[s].map { "\(t.status(s)) \($0)" } }.joined(separator: ", ")
                    svg += "<rect class=\"mark\" x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(w))\" height=\"\(n(barH))\" fill=\"\(group.colour)\" stroke=\"#fff\">"
                    svg += "<title>\(escape(channel.channel)): \(escape(detail))</title></rect>"
                    x += w
                }
            }
            let axisY = top + Double(shown.count) * (barH + 10)
            svg += "<line x1=\"\(n(left))\" y1=\"\(n(axisY))\" x2=\"\(n(left + plot))\" y2=\"\(n(axisY))\" stroke=\"#1a1a1a\"/>"
            for tick in axis.ticks {
                let tx = left + plot * Double(tick) / Double(axis.top)
                svg += "<line x1=\"\(n(tx))\" y1=\"\(n(axisY))\" x2=\"\(n(tx))\" y2=\"\(n(axisY + 4))\" stroke=\"#1a1a1a\"/>"
                svg += "<text x=\"\(n(tx))\" y=\"\(n(axisY + 16))\" text-anchor=\"middle\">\(tick)</text>"
            }
            svg += legend(statusGroups.map { ($0.colour, t.statusGroup($0.statuses[0]), nil) }, x: 10, y: axisY + 40, swatch: true)
            return figure(svg + "</svg>", caption: t.channelsTitle)
        }

        // MARK: Parts

        /// Round ticks from 0 to a round top above the maximum (4 to 6 of them).
        struct Axis {
            let top: Int64
            let ticks: [Int64]

            init(maximum: Int64) {
                guard maximum > 0 else {
                    top = 1
                    ticks = [0]
                    return
                }
                // The first of 1, 2, 5, 10, 20, 50… that covers the maximum in at most 5 steps.
                var (step, magnitude): (Int64, Int64) = (1, 1)
                while (maximum + step - 1) / step > 5 {
                    step = [magnitude * 2, magnitude * 5, magnitude * 10].first { $0 > step } ?? magnitude * 10
                    if step == magnitude * 10 { magnitude *= 10 }
                }
                let count = (maximum + step - 1) / step
                top = max(step, count * step)
                ticks = (0...count).map { $0 * step }
            }
        }

        static func yAxis(_ axis: Axis, left: Double, top: Double, plotW: Double, plotH: Double, label: (Int64) -> String) -> String {
            var svg = "<line x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(top + plotH))\" stroke=\"#1a1a1a\"/>"
            svg += "<line x1=\"\(n(left))\" y1=\"\(n(top + plotH))\" x2=\"\(n(left + plotW))\" y2=\"\(n(top + plotH))\" stroke=\"#1a1a1a\"/>"
            for tick in axis.ticks {
                let y = top + plotH - plotH * Double(tick) / Double(axis.top)
                svg += "<line x1=\"\(n(left - 4))\" y1=\"\(n(y))\" x2=\"\(n(left + plotW))\" y2=\"\(n(y))\" stroke=\"#ddd\"/>"
                svg += "<text x=\"\(n(left - 6))\" y=\"\(n(y + 4))\" text-anchor=\"end\">\(escape(label(tick)))</text>"
            }
            return svg
        }

        /// `swatch`: a block of colour (bars); else a short line in the series' dash pattern. An
        /// entry that would go past the chart's width starts a new row, 16 units lower.
        static func legend(_ entries: [(colour: String, name: String, dash: String?)], x: Double, y: Double, swatch: Bool) -> String {
            var svg = ""
            var (lx, ly) = (x, y)
            for entry in entries {
                let advance = 40 + Double(entry.name.count) * 6.5
                if lx > x && lx + advance > width - 4 { (lx, ly) = (x, ly + 16) }
                svg += "<line x1=\"\(n(lx))\" y1=\"\(n(ly - 4))\" x2=\"\(n(lx + 22))\" y2=\"\(n(ly - 4))\" stroke=\"\(entry.colour)\" stroke-width=\"\(swatch ? 8 : 3)\""
                svg += "\(entry.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>"
                svg += "<text x=\"\(n(lx + 28))\" y=\"\(n(ly))\">\(escape(entry.name))</text>"
                lx += advance
            }
            return svg
        }

        static func open(height: Double, label: String) -> String {
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(n(width)) \(n(height))\" role=\"img\" aria-label=\"\(escape(label))\">"
        }

        static func figure(_ svg: String, caption: String) -> String {
            "<figure class=\"chart\"><figcaption>\(escape(caption))</figcaption>\(svg)</figure>\n"
        }

        /// A coordinate with at most one decimal.
        static func n(_ x: Double) -> String {
            let tenths = Int64((x * 10).rounded())
            return tenths % 10 == 0 ? String(tenths / 10) : ReportFormat.text(Double(tenths) / 10)
        }
    }
}
