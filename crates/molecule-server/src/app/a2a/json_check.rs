//! Is a body JSON that can be stored as such in an activity row? The
//! proxy asks this twice per logged call (the request and the answer), so
//! it is a hand-written scanner instead of a serde pass: one walk over the
//! bytes, no allocation, strings skipped eight bytes at a time.
//!
//! "Storable" is what the row's readers take back: `serde_json::Value`
//! (which refuses lone UTF-16 surrogates in `\u` escapes, numbers beyond
//! `f64`, and nesting deeper than 127) and PostgreSQL's `jsonb`. A
//! `serde::de::IgnoredAny` pass accepts the first two, and a row holding
//! one would break every later listing of the workspace's activity.
//! Numbers with an exponent or of more than 300 characters are left to
//! serde_json to decide.

/// Nesting serde_json accepts (its recursion limit is 128, hit by the
/// 128th open container).
const MAX_DEPTH: u32 = 127;
/// Number literals longer than this may overflow `f64`: serde decides.
const PLAIN_NUMBER_MAX: usize = 300;

/// Whether `text` is one JSON value, surrounded by optional whitespace,
/// that `serde_json::Value` parses.
pub(super) fn is_storable_json(text: &str) -> bool {
    match scan(text.as_bytes()) {
        Scan::Valid => true,
        Scan::Invalid => false,
        Scan::Unsure => serde_json::from_str::<serde_json::Value>(text).is_ok(),
    }
}

#[derive(Debug, PartialEq)]
enum Scan {
    Valid,
    Invalid,
    /// Valid grammar, but a number serde_json may refuse.
    Unsure,
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// `b` is valid UTF-8 (it came from a `&str`), so only the ASCII grammar
/// and the escapes need checking.
fn scan(b: &[u8]) -> Scan {
    // Bit `d` of `objects`: the container at depth `d + 1` is an object.
    let mut objects: u128 = 0;
    let mut depth: u32 = 0;
    let mut unsure = false;
    let mut i = ws(b, 0);
    'value: loop {
        // A value starts at `i`.
        match b.get(i) {
            Some(b'{') | Some(b'[') => {
                let object = b[i] == b'{';
                if depth == MAX_DEPTH {
                    return Scan::Invalid;
                }
                if object {
                    objects |= 1 << depth;
                } else {
                    objects &= !(1 << depth);
                }
                depth += 1;
                i = ws(b, i + 1);
                let close = if object { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    depth -= 1;
                    i += 1;
                } else if object {
                    match key(b, i) {
                        Some(next) => {
                            i = next;
                            continue 'value;
                        }
                        None => return Scan::Invalid,
                    }
                } else {
                    continue 'value;
                }
            }
            Some(b'"') => match string(b, i + 1) {
                Some(next) => i = next,
                None => return Scan::Invalid,
            },
            Some(b't') if b[i..].starts_with(b"true") => i += 4,
            Some(b'f') if b[i..].starts_with(b"false") => i += 5,
            Some(b'n') if b[i..].starts_with(b"null") => i += 4,
            Some(b'-' | b'0'..=b'9') => match number(b, i) {
                Some((next, plain)) => {
                    unsure |= !plain;
                    i = next;
                }
                None => return Scan::Invalid,
            },
            _ => return Scan::Invalid,
        }
        // After a value: a separator, a closing bracket, or the end.
        loop {
            i = ws(b, i);
            if depth == 0 {
                return match (i == b.len(), unsure) {
                    (false, _) => Scan::Invalid,
                    (true, false) => Scan::Valid,
                    (true, true) => Scan::Unsure,
                };
            }
            let in_object = objects & (1 << (depth - 1)) != 0;
            match (b.get(i), in_object) {
                (Some(b','), false) => {
                    i = ws(b, i + 1);
                    continue 'value;
                }
                (Some(b','), true) => match key(b, ws(b, i + 1)) {
                    Some(next) => {
                        i = next;
                        continue 'value;
                    }
                    None => return Scan::Invalid,
                },
                (Some(b']'), false) | (Some(b'}'), true) => {
                    depth -= 1;
                    i += 1;
                }
                _ => return Scan::Invalid,
            }
        }
    }
}

/// An object key and its colon at `i`; the index of the value after them.
fn key(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = ws(b, string(b, i + 1)?);
    (b.get(i) == Some(&b':')).then(|| ws(b, i + 1))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Non-zero when some byte of `w` is `"`, `\` or a control character
/// (below 0x20); zero exactly when none is. The lowest set bit marks the
/// first such byte (a borrow only spreads to higher bytes).
fn special(w: u64) -> u64 {
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    zero_byte(w ^ (ONES * b'"' as u64))
        | zero_byte(w ^ (ONES * b'\\' as u64))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS)
}

/// The rest of a string whose opening quote is before `i`; the index after
/// its closing quote.
fn string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        // Eight plain bytes at a time, then straight to the first special
        // one (the lowest flagged byte is always a true match).
        while let Some(chunk) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            let found = special(w);
            if found != 0 {
                i += (found.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i = escape(b, i + 1)?,
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
}

/// The escape after a backslash at `i - 1`; the index after it. A `\u`
/// escape of a high surrogate must be followed by one of a low surrogate,
/// and a low surrogate may not stand alone.
fn escape(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 1),
        b'u' => {
            let unit = hex4(b, i + 1)?;
            match unit {
                0xD800..=0xDBFF => {
                    if b.get(i + 5..i + 7) != Some(b"\\u") {
                        return None;
                    }
                    let low = hex4(b, i + 7)?;
                    (0xDC00..=0xDFFF).contains(&low).then_some(i + 11)
                }
                0xDC00..=0xDFFF => None,
                _ => Some(i + 5),
            }
        }
        _ => None,
    }
}

fn hex4(b: &[u8], i: usize) -> Option<u16> {
    let digits = std::str::from_utf8(b.get(i..i + 4)?).ok()?;
    if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

/// A number at `i`; the index after it, and whether it is plain (no
/// exponent, not overly long: surely a finite `f64`).
fn number(b: &[u8], start: usize) -> Option<(usize, bool)> {
    let digits = |mut i: usize| {
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > from).then_some(i)
    };
    let mut i = start;
    if b[i] == b'-' {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    let mut plain = true;
    if let Some(b'e' | b'E') = b.get(i) {
        plain = false;
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(i)?;
    }
    Some((i, plain && i - start <= PLAIN_NUMBER_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_says(b: &[u8]) -> bool {
        serde_json::from_slice::<serde_json::Value>(b).is_ok()
    }

    fn agrees(b: &[u8]) {
        let ours = std::str::from_utf8(b).is_ok_and(is_storable_json);
        assert_eq!(ours, serde_says(b), "{:?}", String::from_utf8_lossy(b));
    }

    const CORPUS: &[&str] = &[
        r#"{"jsonrpc":"2.0","id":1,"result":{"kind":"message","messageId":"m-1","role":"agent","parts":[{"kind":"text","text":"echo: ping"}]}}"#,
        r#"  [1, -2, 3.25, -0.5, 0, 1e3, 2E-7, -1.5e+300, true, false, null, "", {}, []] "#,
        r#"{"a":{"b":{"c":[[],[{}],"x\"y\\z\/\b\f\n\r\t\u00e9\ud83d\ude00"]}},"émoji":"😀 ünïcödé"}"#,
        r#""just a string with a long enough body to take the eight byte path, twice over""#,
        r#"{"k" : "v" , "n" : [ 1 , 2 ] }"#,
        "123456789012345678901234567890",
        "\"\\u0000 nul escape\"",
        "1e400",
        "-",
        "{\"a\":1,}",
        "[1,]",
        "01",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"tab\tinside\"",
        "{\"a\" 1}",
        "nul",
        "truex",
        "[1 2]",
        "{1:2}",
        "",
        "   ",
    ];

    #[test]
    fn agrees_with_serde_json_on_the_corpus() {
        for doc in CORPUS {
            agrees(doc.as_bytes());
        }
    }

    #[test]
    fn nesting_stops_where_serde_json_stops() {
        for depth in [1usize, 126, 127, 128, 129, 300] {
            for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
                let doc = format!("{}0{}", open.repeat(depth), close.repeat(depth));
                agrees(doc.as_bytes());
            }
        }
    }

    #[test]
    fn long_numbers_are_left_to_serde() {
        for len in [299usize, 300, 301, 310, 400] {
            agrees("9".repeat(len).as_bytes());
            agrees(format!("0.{}", "1".repeat(len)).as_bytes());
        }
    }

    /// Mutations of the corpus (byte changes, insertions of grammar
    /// characters, truncations) get the same verdict as serde_json.
    #[test]
    fn agrees_with_serde_json_on_mutations() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const INSERTS: &[&[u8]] = &[
            b"\"",
            b"\\",
            b"{",
            b"}",
            b"[",
            b"]",
            b":",
            b",",
            b"0",
            b"-",
            b"e",
            b".",
            b" ",
            b"\\u",
            b"\\ud83d",
            b"\\ude00",
            b"\x01",
            b"\x7f",
            "é".as_bytes(),
            b"\xff",
            b"true",
            b"null",
        ];
        let mut valid = 0;
        for round in 0..60_000 {
            let doc = CORPUS[round % CORPUS.len()].as_bytes();
            let mut b = doc.to_vec();
            for _ in 0..1 + next() % 3 {
                let at = if b.is_empty() {
                    0
                } else {
                    next() as usize % b.len()
                };
                match next() % 4 {
                    0 if !b.is_empty() => b[at] = next() as u8,
                    1 if !b.is_empty() => {
                        b.remove(at);
                    }
                    2 => b.truncate(at),
                    _ => {
                        let ins = INSERTS[next() as usize % INSERTS.len()];
                        b.splice(at..at, ins.iter().copied());
                    }
                }
            }
            if serde_says(&b) {
                valid += 1;
            }
            agrees(&b);
        }
        // The mutations reach both verdicts.
        assert!(valid > 1_000, "{valid} valid mutations");
    }
}
