//! Per-platform format rules, checked before a draft goes into review (R1.3.4: one
//! content format; R3.3.1: published in the set format). The limits follow each
//! platform's published publishing rules at the time of writing; they are defaults a
//! deployment can change as platforms change theirs.

use govmedia_domain::error::FieldViolation;

/// The platforms content is formatted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// WeChat official account article.
    WechatOfficialAccount,
    /// Weibo post.
    Weibo,
    /// Douyin video.
    Douyin,
    /// Toutiao article.
    Toutiao,
    /// Bilibili video.
    Bilibili,
    /// Xiaohongshu note.
    Xiaohongshu,
    /// Anything else: only the general rules apply.
    Other,
}

/// What a draft carries, as the format rules see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Title characters.
    pub title_chars: usize,
    /// Body characters.
    pub body_chars: usize,
    /// Has a cover image.
    pub has_cover: bool,
    /// Number of images.
    pub images: usize,
    /// Number of videos.
    pub videos: usize,
}

/// The limits of one platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Title required.
    pub title_required: bool,
    /// Longest title.
    pub max_title: usize,
    /// Longest body.
    pub max_body: usize,
    /// A cover image is required.
    pub cover_required: bool,
    /// At least one video is required.
    pub video_required: bool,
    /// At least one image is required.
    pub image_required: bool,
    /// Most images.
    pub max_images: usize,
}

impl Platform {
    /// The default limits.
    pub const fn limits(self) -> Limits {
        match self {
            Platform::WechatOfficialAccount => Limits {
                title_required: true,
                max_title: 64,
                max_body: 20_000,
                cover_required: true,
                video_required: false,
                image_required: false,
                max_images: 100,
            },
            Platform::Weibo => Limits {
                title_required: false,
                max_title: 32,
                max_body: 5_000,
                cover_required: false,
                video_required: false,
                image_required: false,
                max_images: 18,
            },
            Platform::Douyin => Limits {
                title_required: false,
                max_title: 55,
                max_body: 1_000,
                cover_required: false,
                video_required: true,
                image_required: false,
                max_images: 35,
            },
            Platform::Toutiao => Limits {
                title_required: true,
                max_title: 30,
                max_body: 50_000,
                cover_required: false,
                video_required: false,
                image_required: false,
                max_images: 100,
            },
            Platform::Bilibili => Limits {
                title_required: true,
                max_title: 80,
                max_body: 2_000,
                cover_required: true,
                video_required: true,
                image_required: false,
                max_images: 1,
            },
            Platform::Xiaohongshu => Limits {
                title_required: true,
                max_title: 20,
                max_body: 1_000,
                cover_required: false,
                video_required: false,
                image_required: true,
                max_images: 18,
            },
            Platform::Other => Limits {
                title_required: false,
                max_title: 200,
                max_body: 200_000,
                cover_required: false,
                video_required: false,
                image_required: false,
                max_images: 1_000,
            },
        }
    }

    /// The platform's name in messages.
    pub const fn name(self) -> &'static str {
        match self {
            Platform::WechatOfficialAccount => "WeChat official account",
            Platform::Weibo => "Weibo",
            Platform::Douyin => "Douyin",
            Platform::Toutiao => "Toutiao",
            Platform::Bilibili => "Bilibili",
            Platform::Xiaohongshu => "Xiaohongshu",
            Platform::Other => "the platform",
        }
    }
}

/// Every way `shape` breaks `platform`'s rules, as field violations (the draft's
/// `field_prefix` names the variant checked).
pub fn check(platform: Platform, shape: &Shape, field_prefix: &str) -> Vec<FieldViolation> {
    let l = platform.limits();
    let name = platform.name();
    let mut out = Vec::new();
    let mut v = |field: &str, text: String| out.push(FieldViolation::new(format!("{field_prefix}{field}"), text));
    if l.title_required && shape.title_chars == 0 {
        v("title", format!("{name} requires a title"));
    }
    if shape.title_chars > l.max_title {
        v("title", format!("{name} allows at most {} title characters (has {})", l.max_title, shape.title_chars));
    }
    if shape.body_chars > l.max_body {
        v("body", format!("{name} allows at most {} body characters (has {})", l.max_body, shape.body_chars));
    }
    if l.cover_required && !shape.has_cover {
        v("cover_image", format!("{name} requires a cover image"));
    }
    if l.video_required && shape.videos == 0 {
        v("media", format!("{name} requires a video"));
    }
    if l.image_required && shape.images == 0 {
        v("media", format!("{name} requires at least one image"));
    }
    if shape.images > l.max_images {
        v("media", format!("{name} allows at most {} images (has {})", l.max_images, shape.images));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wechat_article_needs_a_title_and_a_cover() {
        let v = check(Platform::WechatOfficialAccount, &Shape { body_chars: 800, ..Default::default() }, "content.");
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["content.title", "content.cover_image"]);
        let ok = Shape { title_chars: 20, body_chars: 800, has_cover: true, images: 3, videos: 0 };
        assert!(check(Platform::WechatOfficialAccount, &ok, "content.").is_empty());
    }

    #[test]
    fn video_platforms_need_a_video_and_titles_have_limits() {
        let v = check(Platform::Douyin, &Shape { title_chars: 60, ..Default::default() }, "");
        assert_eq!(v.len(), 2, "{v:?}");
        let v = check(Platform::Xiaohongshu, &Shape { title_chars: 10, images: 0, ..Default::default() }, "");
        assert!(v.iter().any(|f| f.description.contains("image")), "{v:?}");
    }
}
