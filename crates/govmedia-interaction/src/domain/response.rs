//! Response-time figures (R4.1.1, R4.2.1): how promptly the public got a first answer,
//! per person and per account — count, average and median time to first response in
//! working time, and the share answered within the deadline.

use chrono::Duration;

/// The figures of a set of answered items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFigures {
    /// Items answered.
    pub count: usize,
    /// Average working time to first response.
    pub average: Duration,
    /// Median working time to first response (the lower middle for an even count).
    pub median: Duration,
    /// Answered within their deadline, in per mille (0–1000), so the figure is exact.
    pub within_deadline_per_mille: u32,
}

/// One answered item: its working time to first response and its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// Working time from arrival to first response.
    pub response: Duration,
    /// The first-response target that applied.
    pub target: Duration,
}

/// The figures of `items`; `None` when nothing was answered.
pub fn figures(items: &[Answered]) -> Option<ResponseFigures> {
    if items.is_empty() {
        return None;
    }
    let mut times: Vec<Duration> = items.iter().map(|i| i.response).collect();
    times.sort();
    let count = items.len();
    let total = times.iter().fold(Duration::zero(), |t, d| t + *d);
    let average = total / i32::try_from(count).unwrap_or(i32::MAX);
    let median = times[(count - 1) / 2];
    let within = items.iter().filter(|i| i.response <= i.target).count();
    let within_deadline_per_mille = u32::try_from(within * 1000 / count).unwrap_or(1000);
    Some(ResponseFigures { count, average, median, within_deadline_per_mille })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(minutes: i64) -> Answered {
        Answered { response: Duration::minutes(minutes), target: Duration::hours(4) }
    }

    #[test]
    fn figures_count_average_median_and_share_within_deadline_r4_1_1() {
        let f = figures(&[answered(30), answered(300), answered(60), answered(240)]).expect("figures");
        assert_eq!(f.count, 4);
        assert_eq!(f.average, Duration::minutes(157) + Duration::seconds(30));
        assert_eq!(f.median, Duration::minutes(60), "the lower middle of 30, 60, 240, 300");
        assert_eq!(f.within_deadline_per_mille, 750, "exactly on the deadline counts as within");
        assert_eq!(figures(&[]), None);
    }
}
