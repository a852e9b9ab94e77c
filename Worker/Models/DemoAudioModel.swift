import Dispatch
import MartletAWS
import MartletJSON
import MartletRuntime
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A small additive synthesizer standing in for an AI music model: it turns a prompt into a WAV file.
///
/// Melody, tempo, scale and timbre derive from the prompt and seed through a fixed hash (FNV-1a), so the same
/// parameters always give a byte-identical file. Parameters: `prompt` (string, 1–500 characters, required),
/// `seconds` (0.5–30, default 3), `seed` (integer, default 0), `sampleRate` (default 22050); for tests,
/// `failWith` (a message to fail with after the first step) and `stepMilliseconds` (a pause per step).
///
/// ```swift
/// let model = DemoAudioModel()
/// try await model.warmUp()
/// let job = ModelJob(jobID: "j1", model: "demo", parameters: ["prompt": .string("rain on a tin roof")],
///                    inputPath: nil, workFolder: folder)
/// let result = try await model.run(job) { percent, message in print(percent, message) }
/// ```
struct DemoAudioModel: JobModel {
    let name = "demo"
    private let wavetables = WavetableCache()

    init() {}

    /// Builds the wavetables (well under a millisecond).
    func warmUp() async throws {
        _ = wavetables.tables
    }

    func run(_ job: ModelJob, progress: @Sendable (Int, String) async throws -> Void) async throws -> ModelResult {
        let parameters = try DemoParameters(job.parameters)
        let score = Score(
            prompt: parameters.prompt,
            seed: parameters.seed,
            seconds: parameters.seconds,
            sampleRate: parameters.sampleRate
        )
        var synthesizer = Synthesizer(score: score, tables: wavetables.tables)
        var samples: [Int16] = []
        samples.reserveCapacity(score.sampleCount)
        let totalText = Self.oneDecimal(parameters.seconds)
        let path = job.workFolder + "/" + Self.fileName
        var wroteFile = false

        do {
            for step in 1...Self.steps {
                try Task.checkCancellation()
                if parameters.stepMilliseconds > 0 {
                    try await Task.sleep(for: .milliseconds(parameters.stepMilliseconds))
                }
                let end = score.sampleCount * step / Self.steps
                // The synthesis is CPU-bound: it runs on a thread of its own, never holding up the
                // concurrency pool's few threads (heartbeats and other jobs' I/O run there).
                (synthesizer, samples) = await Self.onWorkerThread { [synthesizer, samples] in
                    var synthesizer = synthesizer
                    var samples = samples
                    synthesizer.render(upTo: end, into: &samples)
                    return (synthesizer, samples)
                }
                let message: String
                if step < Self.steps {
                    let done = Self.oneDecimal(Double(end) / Double(score.sampleRate))
                    message = "synthesizing \(done) s / \(totalText) s"
                } else {
                    try WAVFile.data(samples: samples, sampleRate: score.sampleRate)
                        .write(to: URL(fileURLWithPath: path))
                    wroteFile = true
                    message = "wrote \(totalText) s of audio"
                }
                try await progress(step * 100 / Self.steps, message)
                if step == 1, let failure = parameters.failWith {
                    throw ModelError(message: failure, isRetryable: true)
                }
            }
        } catch {
            if wroteFile { try? FileManager.default.removeItem(atPath: path) }
            throw error
        }

        let excerpt = parameters.prompt.count > 40 ? String(parameters.prompt.prefix(40)) + "…" : parameters.prompt
        return ModelResult(
            path: path,
            contentType: "audio/wav",
            summary: "\(totalText) s of audio at \(score.sampleRate) Hz from \"\(excerpt)\""
        )
    }

    static let fileName = "audio.wav"
    static let steps = 10

    /// Runs `work` on a Dispatch thread and waits for it without blocking a concurrency thread.
    static func onWorkerThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async { continuation.resume(returning: work()) }
        }
    }

    /// `x` with one decimal, without Foundation's formatters.
    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

/// The demo model's parameters, validated.
struct DemoParameters: Sendable, Equatable {
    var prompt: String
    var seconds: Double
    var seed: Int64
    var sampleRate: Int
    var failWith: String?
    var stepMilliseconds: Int

    static let sampleRates = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]

    init(_ parameters: [String: JSONValue]) throws {
        guard case .string(let prompt)? = parameters["prompt"], (1...500).contains(prompt.count) else {
            throw ModelError.invalidParameter("prompt is required: a string of 1 to 500 characters")
        }
        self.prompt = prompt
        seconds = try Self.number("seconds", in: 0.5...30, default: 3, from: parameters)
        // Integers a JSON number holds exactly.
        seed = Int64(
            try Self.integer("seed", in: -9_007_199_254_740_991...9_007_199_254_740_991, default: 0, from: parameters)
        )
        sampleRate = Int(try Self.integer("sampleRate", in: 8000...48000, default: 22050, from: parameters))
        guard Self.sampleRates.contains(sampleRate) else {
            let allowed = Self.sampleRates.map(String.init).joined(separator: ", ")
            throw ModelError.invalidParameter("sampleRate must be one of \(allowed) (got \(sampleRate))")
        }
        stepMilliseconds = Int(try Self.integer("stepMilliseconds", in: 0...10_000, default: 0, from: parameters))
        switch parameters["failWith"] {
        case nil, .null?: failWith = nil
        case .string(let message)?: failWith = message
        default: throw ModelError.invalidParameter("failWith must be a string")
        }
    }

    private static func number(
        _ name: String,
        in range: ClosedRange<Double>,
        default value: Double,
        from parameters: [String: JSONValue]
    ) throws -> Double {
        let allowed = "\(name) must be a number from \(format(range.lowerBound)) to \(format(range.upperBound))"
        switch parameters[name] {
        case nil, .null?: return value
        case .number(let number)?:
            guard range.contains(number) else {
                throw ModelError.invalidParameter("\(allowed) (got \(format(number)))")
            }
            return number
        default: throw ModelError.invalidParameter(allowed)
        }
    }

    private static func integer(
        _ name: String,
        in range: ClosedRange<Double>,
        default value: Double,
        from parameters: [String: JSONValue]
    ) throws -> Double {
        let allowed = "\(name) must be an integer from \(format(range.lowerBound)) to \(format(range.upperBound))"
        switch parameters[name] {
        case nil, .null?: return value
        case .number(let number)?:
            guard range.contains(number), number.rounded() == number else {
                throw ModelError.invalidParameter("\(allowed) (got \(format(number)))")
            }
            return number
        default: throw ModelError.invalidParameter(allowed)
        }
    }

    private static func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e16 ? String(Int64(value)) : String(value)
    }
}

// MARK: - Composition

/// FNV-1a, 64-bit: a fixed hash, unlike Swift's per-process seeded `Hasher`.
enum FNV1a {
    static func hash(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = seed
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}

/// SplitMix64: a tiny deterministic generator for the composition's choices.
struct SplitMix64: Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// A value in 0..<1.
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// One note of the score, in samples.
struct Note: Sendable {
    var start: Int
    var length: Int
    var frequency: Double
    var amplitude: Double
    /// The wavetables the note morphs from and to over its length.
    var timbre: (from: Int, to: Int)
    var attack: Int
    var release: Int
    var vibrato: Double

    var end: Int { start + length + release }
}

/// What to play: notes for a lead, a bass and a pad, plus the tempo the echo follows.
struct Score: Sendable {
    var sampleRate: Int
    var sampleCount: Int
    var beatSamples: Int
    var notes: [Note]

    private static let scales: [[Int]] = [
        [0, 2, 4, 5, 7, 9, 11],  // major
        [0, 2, 3, 5, 7, 8, 10],  // natural minor
        [0, 2, 3, 5, 7, 9, 10],  // dorian
        [0, 2, 4, 5, 7, 9, 10],  // mixolydian
        [0, 2, 4, 7, 9],  // major pentatonic
        [0, 3, 5, 7, 10],  // minor pentatonic
    ]
    private static let progressions: [[Int]] = [
        [0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 4, 4], [5, 3, 0, 4], [0, 0, 3, 4],
    ]
    private static let durations: [Double] = [0.5, 1, 1, 2, 0.5, 1.5]

    init(prompt: String, seed: Int64, seconds: Double, sampleRate: Int) {
        let promptHash = FNV1a.hash(prompt.utf8)
        var random = SplitMix64(seed: promptHash ^ (UInt64(bitPattern: seed) &* 0x9e37_79b9_7f4a_7c15))
        self.sampleRate = sampleRate
        sampleCount = Int((seconds * Double(sampleRate)).rounded())
        let rate = Double(sampleRate)
        let tempo = 72 + Double(random.next(below: 72))
        let beat = 60 / tempo
        beatSamples = Int(beat * rate)
        let scale = Self.scales[random.next(below: Self.scales.count)]
        let progression = Self.progressions[random.next(below: Self.progressions.count)]
        let root = 45 + random.next(below: 12)
        let lead = (from: random.next(below: Wavetables.count), to: random.next(below: Wavetables.count))
        let pad = (from: random.next(below: Wavetables.count), to: random.next(below: Wavetables.count))
        let bass = (from: random.next(below: 4), to: random.next(below: 4))
        let vibrato = 0.002 + 0.004 * random.unit()

        func frequency(degree: Int, base: Int) -> Double {
            let octave = degree >= 0 ? degree / scale.count : (degree - scale.count + 1) / scale.count
            let step = scale[degree - octave * scale.count]
            let midi = Double(base + 12 * octave + step)
            return 440 * pow(2, (midi - 69) / 12)
        }
        func samples(_ beats: Double) -> Int { Int(beats * beat * rate) }

        // The lead's motif: one note per word of the prompt, so the text shapes the tune.
        let words = prompt.lowercased().split { !$0.isLetter && !$0.isNumber }.prefix(16)
        let motif: [(degree: Int, beats: Double)] =
            (words.isEmpty ? [Substring(prompt)] : Array(words)).map { word in
                let hash = FNV1a.hash(word.utf8, seed: promptHash)
                return (Int(hash % 10), Self.durations[Int((hash >> 16) % UInt64(Self.durations.count))])
            }
        let totalBeats = seconds / beat
        var notes: [Note] = []

        var position = 0.0
        var index = 0
        while position < totalBeats {
            let (degree, beats) = motif[index % motif.count]
            let bar = Int(position / 4)
            let chord = progression[bar % progression.count]
            let variation = random.unit() < 0.25 ? random.next(below: 3) - 1 : 0
            if random.unit() >= 0.08 {
                let start = samples(position)
                notes.append(
                    Note(
                        start: start,
                        length: max(1, samples(beats * 0.9)),
                        frequency: frequency(degree: degree + chord + variation, base: root + 24),
                        amplitude: 0.26 + 0.08 * random.unit(),
                        timbre: lead,
                        attack: samples(0.03),
                        release: Int(0.15 * rate),
                        vibrato: vibrato
                    )
                )
            }
            position += beats
            index += 1
        }

        // Bass on the chord root, two notes a bar; a soft triad pad a bar long.
        for bar in 0..<Int((totalBeats / 4).rounded(.up)) {
            let chord = progression[bar % progression.count]
            for half in 0..<2 {
                notes.append(
                    Note(
                        start: samples(Double(bar * 4 + half * 2)),
                        length: samples(1.8),
                        frequency: frequency(degree: chord, base: root),
                        amplitude: 0.3,
                        timbre: bass,
                        attack: Int(0.005 * rate),
                        release: Int(0.08 * rate),
                        vibrato: 0
                    )
                )
            }
            for voice in 0..<3 {
                notes.append(
                    Note(
                        start: samples(Double(bar * 4)),
                        length: samples(4),
                        frequency: frequency(degree: chord + 2 * voice, base: root + 12),
                        amplitude: 0.07,
                        timbre: pad,
                        attack: Int(0.25 * rate),
                        release: Int(0.4 * rate),
                        vibrato: 0
                    )
                )
            }
        }
        let count = sampleCount
        self.notes = notes.filter { $0.start < count }.sorted { $0.start < $1.start }
    }
}

// MARK: - Sound

/// Single-cycle waveforms built additively from a few harmonic spectra.
struct Wavetables: Sendable {
    static let size = 2048
    static let count = 8
    /// Harmonics per table; notes too high for these below Nyquist fall back to the sine.
    static let harmonics = 12

    /// `count` tables of `size + 1` samples (the last repeats the first, for interpolation).
    let tables: [[Double]]

    init() {
        let sine = (0..<Self.size).map { sin(2 * Double.pi * Double($0) / Double(Self.size)) }
        tables = (0..<Self.count).map { kind in
            var table = [Double](repeating: 0, count: Self.size + 1)
            for harmonic in 1...Self.harmonics {
                let amplitude = Self.amplitude(kind: kind, harmonic: harmonic)
                guard amplitude != 0 else { continue }
                for index in 0..<Self.size { table[index] += amplitude * sine[harmonic * index % Self.size] }
            }
            let peak = table.lazy.map(abs).max() ?? 1
            for index in 0..<Self.size { table[index] /= peak }
            table[Self.size] = table[0]
            return table
        }
    }

    private static func amplitude(kind: Int, harmonic n: Int) -> Double {
        let odd = n % 2 == 1
        let x = Double(n)
        switch kind {
        case 0: return n == 1 ? 1 : 0  // sine
        case 1: return odd ? (n % 4 == 1 ? 1 : -1) / (x * x) : 0  // triangle
        case 2: return odd ? 1 / x : 0  // square
        case 3: return 1 / x  // saw
        case 4: return [1, 0.5, 0.35, 0.25, 0, 0.15, 0, 0.1][safe: n - 1] ?? 0  // organ
        case 5: return [1, 0.35, 0.12][safe: n - 1] ?? 0  // flute
        case 6: return odd ? 1 / x : 0.15 / x  // reed
        default: return 1 / x.squareRoot()  // bright
        }
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

/// Builds the wavetables once, on first use (normally `warmUp`).
final class WavetableCache: Sendable {
    private let storage = Mutex<Wavetables?>(nil)

    var tables: Wavetables {
        storage.withLock { stored in
            if let stored { return stored }
            let built = Wavetables()
            stored = built
            return built
        }
    }
}

/// Renders a score chunk by chunk; the effects carry their state from one chunk to the next.
struct Synthesizer {
    private let score: Score
    private let tables: [[Double]]
    private var rendered = 0
    private var echo: DelayLine
    private var combs: [CombFilter]
    private var allpasses: [AllpassFilter]

    init(score: Score, tables: Wavetables) {
        self.score = score
        self.tables = tables.tables
        let scale = Double(score.sampleRate) / 44100
        echo = DelayLine(length: max(1, score.beatSamples * 3 / 4))
        combs = [1116, 1188, 1277, 1356].map {
            CombFilter(length: Int(Double($0) * scale), feedback: 0.78, damping: 0.3)
        }
        allpasses = [556, 441].map { AllpassFilter(length: Int(Double($0) * scale)) }
    }

    /// Appends samples up to `end` (exclusive) to `output`.
    mutating func render(upTo end: Int, into output: inout [Int16]) {
        let start = rendered
        guard end > start else { return }
        var dry = [Double](repeating: 0, count: end - start)
        let rate = Double(score.sampleRate)
        let nyquist = rate / 2
        let size = Double(Wavetables.size)
        let sine = tables[0]
        let decay = 0.1 * rate

        for note in score.notes where note.start < end && note.end > start {
            let bright = note.frequency * Double(Wavetables.harmonics) < nyquist
            let from = tables[bright ? note.timbre.from : 0]
            let to = tables[bright ? note.timbre.to : 0]
            let cycles = note.frequency / rate
            // The phase of a vibrato of depth d at 5 Hz, integrated: f·t + f·d·(1 − cos 2π·5t) / (2π·5).
            let vibratoDepth = note.vibrato * note.frequency / (2 * Double.pi * 5)
            for index in max(start, note.start)..<min(end, note.end) {
                let t = index - note.start
                let seconds = Double(t) / rate
                var phase = cycles * Double(t)
                if note.vibrato > 0 {
                    let cosinePhase = 5 * seconds + 0.25
                    let cosine = Self.lookup(sine, (cosinePhase - cosinePhase.rounded(.down)) * size)
                    phase += vibratoDepth * (1 - cosine)
                }
                let position = (phase - phase.rounded(.down)) * size
                let morph = min(1, Double(t) / Double(note.length))
                let value = Self.lookup(from, position) * (1 - morph) + Self.lookup(to, position) * morph
                dry[index - start] += value * note.amplitude * Self.envelope(note, at: t, decay: decay)
            }
        }

        let fadeIn = Int(0.005 * rate)
        let fadeOut = Int(0.03 * rate)
        for (offset, sample) in dry.enumerated() {
            let echoed = sample + 0.3 * echo.feed(sample + 0.35 * echo.output)
            var wet = 0.0
            for index in combs.indices { wet += combs[index].process(echoed * 0.04) }
            for index in allpasses.indices { wet = allpasses[index].process(wet) }
            var mixed = tanh(0.9 * (echoed + 0.35 * wet))
            let position = start + offset
            if position < fadeIn { mixed *= Double(position) / Double(fadeIn) }
            let remaining = score.sampleCount - 1 - position
            if remaining < fadeOut { mixed *= Double(remaining) / Double(fadeOut) }
            output.append(Int16((mixed * 32_000).rounded()))
        }
        rendered = end
    }

    private static func lookup(_ table: [Double], _ position: Double) -> Double {
        let index = Int(position)
        let fraction = position - Double(index)
        return table[index] + (table[index + 1] - table[index]) * fraction
    }

    /// Attack, a short decay to 70 %, sustain, and a linear release after the note's length.
    private static func envelope(_ note: Note, at t: Int, decay: Double) -> Double {
        let sustain = 0.7
        func held(_ t: Int) -> Double {
            if t < note.attack { return Double(t) / Double(note.attack) }
            let intoDecay = Double(t - note.attack)
            return intoDecay < decay ? 1 - (1 - sustain) * intoDecay / decay : sustain
        }
        if t < note.length { return held(t) }
        let intoRelease = Double(t - note.length)
        return held(note.length) * max(0, 1 - intoRelease / Double(max(1, note.release)))
    }
}

/// A delay line: `output` is what went in `length` samples ago.
struct DelayLine {
    private var buffer: [Double]
    private var index = 0

    init(length: Int) { buffer = [Double](repeating: 0, count: length) }

    var output: Double { buffer[index] }

    /// Stores `input` and returns the delayed sample it replaces.
    mutating func feed(_ input: Double) -> Double {
        let delayed = buffer[index]
        buffer[index] = input
        index = index + 1 == buffer.count ? 0 : index + 1
        return delayed
    }
}

/// A lowpass-feedback comb filter, as in Freeverb.
struct CombFilter {
    private var buffer: [Double]
    private var index = 0
    private var store = 0.0
    private let feedback: Double
    private let damping: Double

    init(length: Int, feedback: Double, damping: Double) {
        buffer = [Double](repeating: 0, count: max(1, length))
        self.feedback = feedback
        self.damping = damping
    }

    mutating func process(_ input: Double) -> Double {
        let output = buffer[index]
        store = output * (1 - damping) + store * damping
        buffer[index] = input + store * feedback
        index = index + 1 == buffer.count ? 0 : index + 1
        return output
    }
}

/// A Schroeder allpass filter, as in Freeverb.
struct AllpassFilter {
    private var buffer: [Double]
    private var index = 0

    init(length: Int) { buffer = [Double](repeating: 0, count: max(1, length)) }

    mutating func process(_ input: Double) -> Double {
        let delayed = buffer[index]
        buffer[index] = input + delayed * 0.5
        index = index + 1 == buffer.count ? 0 : index + 1
        return delayed - input
    }
}

/// RIFF/WAVE encoding of 16-bit mono PCM.
enum WAVFile {
    static func data(samples: [Int16], sampleRate: Int) -> Data {
        let dataSize = UInt32(samples.count * 2)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(44 + samples.count * 2)
        func append(_ text: String) { bytes.append(contentsOf: text.utf8) }
        func append32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        func append16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        append("RIFF")
        append32(36 + dataSize)
        append("WAVE")
        append("fmt ")
        append32(16)
        append16(1)  // PCM
        append16(1)  // mono
        append32(UInt32(sampleRate))
        append32(UInt32(sampleRate * 2))  // bytes per second
        append16(2)  // block align
        append16(16)  // bits per sample
        append("data")
        append32(dataSize)
        for sample in samples { append16(UInt16(bitPattern: sample)) }
        return Data(bytes)
    }
}

/// A stand-in model for throughput benchmarks: writes `{"jobId": …}` at once.
struct NoopModel: JobModel {
    let name = "noop"

    init() {}

    func warmUp() async throws {}

    func run(_ job: ModelJob, progress: @Sendable (Int, String) async throws -> Void) async throws -> ModelResult {
        let path = job.workFolder + "/result.json"
        // Plain open and write: Foundation's Data.write also syncs the file to disk, which a
        // result that is uploaded and removed right after does not need.
        var json = JSONObjectWriter()
        json.string("jobId", job.jobID)
        let bytes = json.finishedBytes
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw ModelError(message: "cannot write \(path): errno \(errno)", isRetryable: true) }
        let written = bytes.withUnsafeBytes { write(file, $0.baseAddress, $0.count) }
        close(file)
        guard written == bytes.count else { throw ModelError(message: "cannot write \(path): errno \(errno)", isRetryable: true) }
        do {
            try await progress(100, "done")
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        return ModelResult(path: path, contentType: "application/json", summary: nil)
    }
}
