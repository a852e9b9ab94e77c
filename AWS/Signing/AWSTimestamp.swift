#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A UTC instant to the second, formatted the ways AWS signing needs without `DateFormatter`
/// (so a Lambda binary never loads ICU).
public struct AWSTimestamp: Sendable, Hashable, Comparable {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var secondsSince1970: Int64

    public init(secondsSince1970: Int64) { self.secondsSince1970 = secondsSince1970 }

    public init(_ date: Date) { self.secondsSince1970 = Int64(date.timeIntervalSince1970.rounded(.down)) }

    /// The current time.
    public static var now: Self { Self(Date()) }

    public var date: Date { Date(timeIntervalSince1970: TimeInterval(secondsSince1970)) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.secondsSince1970 < rhs.secondsSince1970 }

    public func adding(seconds: Int64) -> Self { Self(secondsSince1970: secondsSince1970 + seconds) }

    /// `20150830T123600Z`: the `X-Amz-Date` form.
    public var amzDate: String { digits(includingTime: true) }

    /// `20150830`: the date of a credential scope.
    public var scopeDate: String { digits(includingTime: false) }

    /// `YYYYMMDD` or `YYYYMMDDTHHMMSSZ`, written straight into the string's storage (signing does this per request).
    private func digits(includingTime: Bool) -> String {
        let c = components
        return String(unsafeUninitializedCapacity: includingTime ? 16 : 8) { buffer in
            func put(_ value: Int, _ width: Int, at offset: Int) {
                var value = value
                for index in stride(from: offset + width - 1, through: offset, by: -1) {
                    buffer[index] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            put(c.year, 4, at: 0)
            put(c.month, 2, at: 4)
            put(c.day, 2, at: 6)
            guard includingTime else { return 8 }
            buffer[8] = UInt8(ascii: "T")
            put(c.hour, 2, at: 9)
            put(c.minute, 2, at: 11)
            put(c.second, 2, at: 13)
            buffer[15] = UInt8(ascii: "Z")
            return 16
        }
    }

    /// `2015-08-30T12:36:00Z`: ISO 8601 as POST policies and credential expirations use it.
    public var iso8601: String {
        let c = components
        return pad(c.year, 4) + "-" + pad(c.month, 2) + "-" + pad(c.day, 2) + "T" + pad(c.hour, 2) + ":" + pad(c.minute, 2) + ":" + pad(c.second, 2) + "Z"
    }

    /// Parses `20150830T123600Z`.
    public init?(amzDate text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z"),
            let year = Self.number(bytes[0..<4]), let month = Self.number(bytes[4..<6]), let day = Self.number(bytes[6..<8]),
            let hour = Self.number(bytes[9..<11]), let minute = Self.number(bytes[11..<13]), let second = Self.number(bytes[13..<15])
        else { return nil }
        self.init(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    /// Parses ISO 8601 UTC times such as `2025-01-15T13:00:00Z` or `2025-01-15T13:00:00.000Z`
    /// (and a `+00:00` offset), as credential endpoints and policies write them.
    public init?(iso8601 text: String) {
        var bytes = Array(text.utf8)
        if bytes.count >= 6, text.hasSuffix("+00:00") { bytes.removeLast(6); bytes.append(UInt8(ascii: "Z")) }
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z"), bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: " "), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = Self.number(bytes[0..<4]), let month = Self.number(bytes[5..<7]), let day = Self.number(bytes[8..<10]),
            let hour = Self.number(bytes[11..<13]), let minute = Self.number(bytes[14..<16]), let second = Self.number(bytes[17..<19])
        else { return nil }
        // Fractional seconds are allowed and dropped.
        if bytes.count > 20 {
            guard bytes[19] == UInt8(ascii: "."), bytes[20..<(bytes.count - 1)].allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        }
        self.init(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    /// `Wed, 21 Oct 2015 07:28:00 GMT`: the HTTP date of `Last-Modified` and `If-Modified-Since` (RFC 9110 IMF-fixdate).
    public var httpDate: String {
        let c = components
        let days = secondsSince1970 >= 0 ? secondsSince1970 / 86_400 : (secondsSince1970 - 86_399) / 86_400
        let weekday = Self.weekdays[Int(((days % 7) + 10) % 7)]  // 1970-01-01 was a Thursday
        return "\(weekday), \(pad(c.day, 2)) \(Self.months[c.month - 1]) \(pad(c.year, 4)) \(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2)) GMT"
    }

    /// `27/Nov/2026:06:30:00 +0000`: the common log format of API Gateway's `requestTime`.
    public var commonLogDate: String {
        let c = components
        return "\(pad(c.day, 2))/\(Self.months[c.month - 1])/\(pad(c.year, 4)):\(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2)) +0000"
    }

    /// Parses an IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`); the obsolete HTTP date forms are not accepted.
    public init?(httpDate text: String) {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let monthIndex = Self.months.firstIndex(of: String(parts[2])),
            let year = Int(parts[3])
        else { return nil }
        let time = parts[4].split(separator: ":")
        guard time.count == 3, let hour = Int(time[0]), let minute = Int(time[1]), let second = Int(time[2]) else { return nil }
        self.init(year: year, month: monthIndex + 1, day: day, hour: hour, minute: minute, second: second)
    }

    private static let weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private init?(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second) else {
            return nil
        }
        let days = Self.daysFromCivil(year: year, month: month, day: day)
        self.secondsSince1970 = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for digit in digits {
            guard digit >= 48, digit <= 57 else { return nil }
            value = value * 10 + Int(digit - 48)
        }
        return value
    }

    private struct Components {
        var year, month, day, hour, minute, second: Int
    }

    private var components: Components {
        let days = Int(secondsSince1970 >= 0 ? secondsSince1970 / 86_400 : (secondsSince1970 - 86_399) / 86_400)
        let seconds = Int(secondsSince1970 - Int64(days) * 86_400)
        let (year, month, day) = Self.civilFromDays(days)
        return Components(year: year, month: month, day: day, hour: seconds / 3600, minute: seconds % 3600 / 60, second: seconds % 60)
    }

    // Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
    private static func civilFromDays(_ z: Int) -> (Int, Int, Int) {
        let z = z + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

private func pad(_ value: Int, _ width: Int) -> String {
    let digits = String(value)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}
