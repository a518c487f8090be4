//! Plots of linearization sweeps (plotters; PNG and SVG). Text is drawn with the embedded DejaVu
//! Sans font through plotters' `ab_glyph` feature, so no system fonts are needed.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One series of (kept ReLUs, accuracy %) points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points, any order (sorted by x when drawn).
    pub points: Vec<(f64, f64)>,
}

/// Per-layer kept fraction of one method.
#[derive(Debug, Clone)]
pub struct Allocation {
    /// Legend label.
    pub label: String,
    /// Kept share (0..=1) per layer, in layer order.
    pub shares: Vec<f64>,
}

const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; registering it can only fail if the bytes were not a font.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    C[i % C.len()]
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

/// A chart, drawable on any backend.
enum Chart<'a> {
    Accuracy {
        title: &'a str,
        series: &'a [Series],
        teacher: Option<f64>,
        x_desc: &'a str,
    },
    Allocation {
        title: &'a str,
        layers: &'a [String],
        methods: &'a [Allocation],
    },
}

impl Chart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        match *self {
            Chart::Accuracy {
                title,
                series,
                teacher,
                x_desc,
            } => accuracy_chart(root, title, series, teacher, x_desc),
            Chart::Allocation {
                title,
                layers,
                methods,
            } => allocation_chart(root, title, layers, methods),
        }
    }
}

/// Writes `stem.png` and `stem.svg`.
fn both(stem: &Path, size: (u32, u32), chart: &Chart) -> Result<()> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        chart.draw(&root)?;
        root.present().map_err(err)?;
    }
    let root = SVGBackend::new(&svg, size).into_drawing_area();
    chart.draw(&root)?;
    root.present().map_err(err)?;
    Ok(())
}

fn accuracy_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    teacher: Option<f64>,
    x_desc: &str,
) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (xmin, xmax) = xs.fold((f64::MAX, f64::MIN_POSITIVE), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (ymin, ymax) = ys
        .chain(teacher)
        .fold((100.0f64, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    let (ymin, ymax) = (ymin.floor(), (ymax + 1.0).min(100.5));
    // Counts start at 1; latencies may be fractions of a second.
    let floor = if xmin >= 1.0 { 1.0 } else { 1e-3 };
    let xmin = (xmin.max(floor) * 0.8).max(floor);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        // log10 of the count on a linear axis: plotters' log axis labels only the decades.
        .build_cartesian_2d(xmin.log10()..(xmax * 1.25).log10(), (ymin - 1.0)..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(10)
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc(x_desc)
        .y_desc("test accuracy (%)")
        .label_style((FONT, 14))
        .x_label_formatter(&|v| {
            let x = 10f64.powf(*v);
            if x < 1.0 {
                format!("{x:.2}")
            } else {
                round2(x)
            }
        })
        .draw()
        .map_err(err)?;
    if let Some(t) = teacher {
        chart
            .draw_series(LineSeries::new(
                [(xmin.log10(), t), ((xmax * 1.25).log10(), t)],
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(err)?
            .label(format!("all-ReLU teacher ({t:.2}%)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    }
    for (i, s) in series.iter().enumerate() {
        let mut pts: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x.log10(), y)).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let c = color(i);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// `v` to two significant digits, without a fraction (axis labels).
fn round2(v: f64) -> String {
    if v < 10.0 {
        return format!("{v:.1}");
    }
    let p = 10f64.powi(v.log10().floor() as i32 - 1);
    format!("{:.0}", (v / p).round() * p)
}

/// Accuracy against kept ReLUs (log x), one line per method, plus the teacher as a reference.
pub fn accuracy_vs_relus(
    stem: &Path,
    title: &str,
    series: &[Series],
    teacher: Option<f64>,
) -> Result<()> {
    let c = Chart::Accuracy {
        title,
        series,
        teacher,
        x_desc: "kept ReLUs per image (log scale)",
    };
    both(stem, (900, 600), &c)
}

/// Accuracy against the estimated latency of one private inference on a device and link (log
/// x, seconds), one line per method.
pub fn accuracy_vs_latency(stem: &Path, title: &str, series: &[Series]) -> Result<()> {
    let c = Chart::Accuracy {
        title,
        series,
        teacher: None,
        x_desc: "estimated private-inference latency, s (log scale)",
    };
    both(stem, (900, 600), &c)
}

fn allocation_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    layers: &[String],
    methods: &[Allocation],
) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let n = layers.len().max(1);
    let m = methods.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..n as f64, 0.0..105.0)
        .map_err(err)?;
    let names = layers.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 1e-6 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("ReLU layer")
        .y_desc("ReLUs kept (% of the layer)")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    let width = 0.8 / m as f64;
    for (j, a) in methods.iter().enumerate() {
        let c = color(j);
        chart
            .draw_series(a.shares.iter().enumerate().map(|(i, &s)| {
                let x0 = i as f64 + 0.1 + j as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, 100.0 * s)], c.filled())
            }))
            .map_err(err)?
            .label(a.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Per-layer allocation (share of each layer's ReLUs kept) of each method at one budget.
pub fn allocation(
    stem: &Path,
    title: &str,
    layers: &[String],
    methods: &[Allocation],
) -> Result<()> {
    let c = Chart::Allocation {
        title,
        layers,
        methods,
    };
    both(stem, (900, 600), &c)
}
