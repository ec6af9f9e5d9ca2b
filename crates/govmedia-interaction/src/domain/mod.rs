//! The interaction rules: the business calendar of reply deadlines (R4.1.1, R4.2.1:
//! "promptly" is measured in the bureau's working time), the moderation rules applied to
//! arriving comments (R4.1.3), comment and reply states, conversations and referrals
//! (R4.2), escalations of missed deadlines, and response-time figures.

pub mod calendar;
pub mod campaign;
pub mod comment;
pub mod conversation;
pub mod escalation;
pub mod moderation;
pub mod response;
