import Glibc

/// The terminal `tcp-top` draws on, in the full-screen mode of `top`: keys read one at a time
/// without echo, the alternate screen, the cursor hidden. ``leave()`` puts every setting back,
/// and it runs however the tool ends (`q`, Ctrl-C, SIGTERM, `--duration`).
final class Terminal: @unchecked Sendable {
    private var saved = termios()
    private var active = false

    /// Whether standard input and output are a terminal (else `tcp-top` prints plain frames).
    static var isInteractive: Bool { isatty(0) == 1 && isatty(1) == 1 }

    /// Enters full-screen mode. Ctrl-C still sends SIGINT (ISIG stays on).
    func enter() {
        guard !active, tcgetattr(0, &saved) == 0 else { return }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        tcsetattr(0, TCSANOW, &raw)
        write("\u{1B}[?1049h\u{1B}[?25l")
        active = true
    }

    /// Restores the screen, the cursor and the terminal's settings as they were.
    func leave() {
        guard active else { return }
        write("\u{1B}[?25h\u{1B}[?1049l")
        tcsetattr(0, TCSANOW, &saved)
        active = false
    }

    /// Draws `lines` from the top left, clearing what the previous frame left.
    func draw(_ lines: [String]) {
        write("\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\r\n") + "\u{1B}[J")
    }

    /// Rows and columns of the terminal (24 x 80 when it does not say).
    var size: (rows: Int, columns: Int) {
        var window = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &window) == 0, window.ws_row > 0, window.ws_col > 0 else { return (24, 80) }
        return (Int(window.ws_row), Int(window.ws_col))
    }

    /// Whether standard input has ended (hung up): no key will come, and waiting for one would
    /// return at once.
    private(set) var inputEnded = false

    /// A key pressed within `milliseconds`, or nil.
    func key(within milliseconds: Int32) -> UInt8? {
        var descriptor = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, max(0, milliseconds)) > 0 else { return nil }
        var byte: UInt8 = 0
        let count = read(0, &byte, 1)
        if count == 1 { return byte }
        if count == 0 || (count < 0 && errno != EINTR && errno != EAGAIN) { inputEnded = true }
        return nil
    }

    func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
