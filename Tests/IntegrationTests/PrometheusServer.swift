import Foundation
import XCTest

/// A real Prometheus server (Debian's `prometheus`, which scripts/setup installs) on loopback,
/// scraping one target every second, with its data in a temporary directory removed at the end.
final class PrometheusServer {
    let process = Process()
    let port = freePort()
    private let directory: URL

    init(scraping target: String) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw TrafficError.notBuilt("\(Self.executable) (run scripts/setup, which installs Debian's prometheus)")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("netevents-prometheus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let configuration = directory.appendingPathComponent("prometheus.yml")
        try """
            global:
              scrape_interval: 1s
              scrape_timeout: 900ms
            scrape_configs:
              - job_name: netevents
                static_configs:
                  - targets: ['\(target)']
            """.write(to: configuration, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = [
            "--config.file=\(configuration.path)", "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while httpGet("http://127.0.0.1:\(port)/-/ready")?.status != 200 {
            guard Date() < deadline, process.isRunning else {
                stop()
                throw TrafficError.timeout(["prometheus", "not ready on port \(port)"])
            }
            usleep(100_000)
        }
    }

    static let executable = "/usr/bin/prometheus"

    func stop() {
        if process.isRunning {
            process.terminate()
            waitUntilExit(process)
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }

    /// The value of an instant query that yields one number (`sum(...)`), nil when it yields none.
    func value(of query: String) -> Double? {
        var components = URLComponents(string: "http://127.0.0.1:\(port)/api/v1/query")!
        components.queryItems = [URLQueryItem(name: "query", value: query)]
        // URLComponents leaves '+' alone, which a query string reads as a space.
        let url = components.url!.absoluteString.replacingOccurrences(of: "+", with: "%2B")
        guard let (status, body) = httpGet(url), status == 200,
            let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
            let first = result.first, let pair = first["value"] as? [Any], pair.count == 2, let text = pair[1] as? String
        else { return nil }
        return Double(text)
    }

    /// Waits (up to `timeout` seconds) until every query yields its expected value; the values
    /// last seen, for the failure message.
    func waitFor(_ expected: [String: Double], timeout: TimeInterval = 30) -> [String: Double?] {
        let deadline = Date().addingTimeInterval(timeout)
        var seen: [String: Double?] = [:]
        repeat {
            for query in expected.keys { seen[query] = value(of: query) }
            if expected.allSatisfy({ seen[$0.key] == $0.value }) { return seen }
            usleep(250_000)
        } while Date() < deadline
        return seen
    }
}

/// `GET url` with curl: the status and the body; nil when nothing answered.
func httpGet(_ url: String, timeout: Double = 5) -> (status: Int, body: String)? {
    guard let (_, data) = runToEnd("/usr/bin/curl", ["-s", "--max-time", "\(timeout)", "-w", "\n%{http_code}", url]) else { return nil }
    let text = String(decoding: data, as: UTF8.self)
    guard let newline = text.lastIndex(of: "\n"), let status = Int(text[text.index(after: newline)...]), status != 0 else { return nil }
    return (status, String(text[..<newline]))
}
