//! The PNG chart of `sluice bench`: one horizontal bar per (workload, backend), labelled with
//! its events per second. Text uses the public-domain 8x8 font of `font8x8`, so no system
//! font is needed.

use std::path::Path;

use anyhow::{Context, Result};
use font8x8::UnicodeFonts;

/// One bar: its label, value, and whether it is a GPU run (drawn in another colour).
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub value_text: String,
    pub gpu: bool,
}

const WIDTH: usize = 1000;
const ROW: usize = 34;
const TOP: usize = 60;
/// Smaller text for the lines under the title.
const NOTE_SCALE: usize = 1;
const LEFT: usize = 330;
const SCALE: usize = 2;

struct Canvas {
    pixels: Vec<[u8; 3]>,
    height: usize,
}

impl Canvas {
    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, colour: [u8; 3]) {
        for row in y..(y + h).min(self.height) {
            for col in x..(x + w).min(WIDTH) {
                self.pixels[row * WIDTH + col] = colour;
            }
        }
    }

    fn text(&mut self, x: usize, y: usize, text: &str, colour: [u8; 3]) {
        self.text_scaled(x, y, text, colour, SCALE);
    }

    fn text_scaled(&mut self, x: usize, y: usize, text: &str, colour: [u8; 3], scale: usize) {
        for (i, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS.get(ch).unwrap_or([0; 8]);
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..8 {
                    if bits >> gx & 1 == 1 {
                        let px = x + (i * 8 + gx) * scale;
                        self.rect(px, y + gy * scale, scale, scale, colour);
                    }
                }
            }
        }
    }
}

/// Draws `bars` under `title` and small-print `notes` (the machine, the devices) and writes
/// the PNG to `path`.
pub fn write(path: &Path, title: &str, notes: &[String], bars: &[Bar]) -> Result<()> {
    let top = TOP + notes.len() * 12;
    let height = top + bars.len() * ROW + 20;
    let mut canvas = Canvas {
        pixels: vec![[255, 255, 255]; WIDTH * height],
        height,
    };
    canvas.text(16, 16, title, [0, 0, 0]);
    for (i, note) in notes.iter().enumerate() {
        canvas.text_scaled(16, 40 + i * 12, note, [90, 90, 90], NOTE_SCALE);
    }
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max).max(1.0);
    let span = (WIDTH - LEFT - 190) as f64;
    for (i, bar) in bars.iter().enumerate() {
        let y = top + i * ROW;
        canvas.text(16, y + 6, &bar.label, [40, 40, 40]);
        let length = ((bar.value / max) * span).round().max(1.0) as usize;
        let colour = if bar.gpu {
            [118, 185, 0]
        } else {
            [70, 110, 180]
        };
        canvas.rect(LEFT, y + 2, length, ROW - 8, colour);
        canvas.text(LEFT + length + 8, y + 6, &bar.value_text, [0, 0, 0]);
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), WIDTH as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .with_context(|| format!("writing {}", path.display()))?;
    let data: Vec<u8> = canvas.pixels.iter().flatten().copied().collect();
    writer
        .write_image_data(&data)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
