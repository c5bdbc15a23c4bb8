/// Numbers with a fixed number of decimals, half away from zero, without `String(format:)`
/// (7 % of scoring a million invoices went to it).
public enum FixedPoint {
    public static func text(_ x: Double, decimals: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x < 0 ? "-inf" : "inf") }
        var scale: Int64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let units = Int64((abs(x) * Double(scale)).rounded())
        let sign = x < 0 && units != 0 ? "-" : ""
        guard decimals > 0 else { return sign + String(units) }
        var fraction = String(units % scale)
        if fraction.count < decimals { fraction = String(repeating: "0", count: decimals - fraction.count) + fraction }
        return sign + String(units / scale) + "." + fraction
    }
}
