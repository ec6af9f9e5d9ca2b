//! Masking of personal data (R7.1.1, PIPL art. 51): a resident ID number, a mobile
//! number or a bank card number found in a text is never stored, logged or answered
//! whole outside the text itself. Findings, refusals, audit attributes and logs carry
//! the masked form, which still lets a person recognise the number they wrote
//! (`1101**********1239`, `138****8000`, `6222***********0128`) and nobody else
//! recover it. [`find`] is the one detector (by checksum, not by shape alone), used by
//! screening and by [`mask_all`], which the audit records pass every text through.

/// The kinds of personal data screening finds, by the names findings give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonalDataKind {
    /// A mainland resident ID number (18 characters, GB 11643).
    ResidentIdNumber,
    /// A mainland mobile number (11 digits).
    MobileNumber,
    /// A bank card number (16 to 19 digits, Luhn).
    BankCardNumber,
}

impl PersonalDataKind {
    /// The name findings use (`matched_term`).
    pub const fn as_str(self) -> &'static str {
        match self {
            PersonalDataKind::ResidentIdNumber => "resident_id_number",
            PersonalDataKind::MobileNumber => "mobile_number",
            PersonalDataKind::BankCardNumber => "bank_card_number",
        }
    }

    /// `value` masked: the first and last characters a person needs to recognise it
    /// (ID: 4 and 4, the region and the check digits; mobile: 3 and 4, as carriers
    /// print them; card: 4 and 4, as banks print them), every other character a `*`.
    pub fn mask(self, value: &str) -> String {
        let (head, tail) = match self {
            PersonalDataKind::ResidentIdNumber | PersonalDataKind::BankCardNumber => (4, 4),
            PersonalDataKind::MobileNumber => (3, 4),
        };
        let chars: Vec<char> = value.chars().collect();
        if chars.len() <= head + tail {
            return "*".repeat(chars.len());
        }
        chars.iter().enumerate().map(|(i, c)| if i < head || i >= chars.len() - tail { *c } else { '*' }).collect()
    }
}

/// Personal data found in a text, by character positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// What it is.
    pub kind: PersonalDataKind,
    /// First character.
    pub char_start: usize,
    /// One past the last character.
    pub char_end: usize,
}

/// Resident ID numbers (check digit), mobile numbers (carrier prefixes) and bank card
/// numbers (Luhn) in `text`, in half- or full-width digits.
pub fn find(text: &str) -> Vec<Found> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if digit_value(chars[i]).is_none() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && digit_value(chars[i]).is_some() {
            i += 1;
        }
        let digits: Vec<u32> = chars[start..i].iter().filter_map(|c| digit_value(*c)).collect();
        // An ID number may end with X.
        let ends_with_x = i < chars.len() && matches!(chars[i], 'X' | 'x' | '\u{FF38}' | '\u{FF58}');
        let mut push = |kind, char_end| out.push(Found { kind, char_start: start, char_end });
        if digits.len() == 17 && ends_with_x && resident_id_valid(&digits, chars[i]) {
            push(PersonalDataKind::ResidentIdNumber, i + 1);
            i += 1;
            continue;
        }
        match digits.len() {
            18 if resident_id_valid(&digits[..17], chars[i - 1]) => push(PersonalDataKind::ResidentIdNumber, i),
            11 if digits[0] == 1 && (3..=9).contains(&digits[1]) => push(PersonalDataKind::MobileNumber, i),
            16..=19 if luhn_valid(&digits) => push(PersonalDataKind::BankCardNumber, i),
            _ => {}
        }
    }
    out
}

/// `text` with every piece of personal data [`find`] finds masked; the rest unchanged.
pub fn mask_all(text: &str) -> String {
    // Most texts hold no digit run long enough: skip the allocation.
    if !text.chars().any(|c| digit_value(c).is_some()) {
        return text.to_owned();
    }
    let found = find(text);
    if found.is_empty() {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in found {
        out.extend(&chars[at..f.char_start]);
        out.push_str(&f.kind.mask(&chars[f.char_start..f.char_end].iter().collect::<String>()));
        at = f.char_end;
    }
    out.extend(&chars[at..]);
    out
}

fn digit_value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        '\u{FF10}'..='\u{FF19}' => Some(c as u32 - 0xFF10),
        _ => None,
    }
}

/// ISO 7064 MOD 11-2: the check character of a mainland resident ID number.
pub fn resident_id_valid(digits: &[u32], check: char) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECKS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    if digits.len() != 17 {
        return false;
    }
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    let check = match check {
        'x' => 'X',
        '\u{FF38}' | '\u{FF58}' => 'X',
        c => digit_value(c).and_then(|d| char::from_digit(d, 10)).unwrap_or(c),
    };
    CHECKS[(sum % 11) as usize] == check
}

/// The Luhn check of a card number.
pub fn luhn_valid(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_is_masked_as_people_print_it_r7_1_1() {
        assert_eq!(PersonalDataKind::ResidentIdNumber.mask("110105199003071239"), "1101**********1239");
        assert_eq!(PersonalDataKind::ResidentIdNumber.mask("11010519491231002X"), "1101**********002X");
        assert_eq!(PersonalDataKind::MobileNumber.mask("13800138000"), "138****8000");
        assert_eq!(PersonalDataKind::MobileNumber.mask("１３８００１３８０００"), "１３８****８０００");
        assert_eq!(PersonalDataKind::BankCardNumber.mask("6222021234567890128"), "6222***********0128");
        assert_eq!(PersonalDataKind::MobileNumber.mask("1380"), "****", "too short to show any of it");
    }

    #[test]
    fn every_kind_is_masked_inside_any_text_r7_1_1() {
        assert_eq!(
            mask_all("身份证110105199003071239，电话13800138000，卡号6222021234567890128。"),
            "身份证1101**********1239，电话138****8000，卡号6222***********0128。"
        );
        assert_eq!(mask_all("编号12345678901，身份证110105199003071230"), "编号12345678901，身份证110105199003071230");
        assert_eq!(mask_all("no digits here"), "no digits here");
    }
}
