//! The interaction rules. So far: the business calendar of reply deadlines (R4.1.1,
//! R4.2.1: "promptly" is measured in the bureau's working time) and the moderation
//! rules applied to arriving comments (R4.1.3), and response-time figures.

pub mod calendar;
pub mod moderation;
pub mod response;
