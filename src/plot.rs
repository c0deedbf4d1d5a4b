//! `tandem plot`: a line chart of measured series as SVG, for the benchmark scripts' sweeps.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// One line of the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its legend.
    pub name: String,
    /// Its points, in the order given.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// Reads `NAME=X:Y,X:Y,...`.
    pub fn parse(spec: &str) -> Result<Series> {
        let Some((name, points)) = spec.split_once('=') else {
            bail!("a series is NAME=X:Y,X:Y,... (got `{spec}`)");
        };
        let points = points
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let (x, y) = p
                    .split_once(':')
                    .with_context(|| format!("point `{p}` of series `{name}` is not X:Y"))?;
                let num = |s: &str| {
                    s.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .with_context(|| format!("`{s}` in series `{name}` is not a number"))
                };
                Ok((num(x)?, num(y)?))
            })
            .collect::<Result<Vec<_>>>()?;
        if points.is_empty() {
            bail!("series `{name}` has no points");
        }
        Ok(Series {
            name: name.to_string(),
            points,
        })
    }
}

/// A chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Caption.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// A logarithmic X axis (every x must be positive).
    pub log_x: bool,
    /// The lines.
    pub series: Vec<Series>,
}

/// Draws `chart` into the SVG file `path`.
pub fn draw(chart: &Chart, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let all = || chart.series.iter().flat_map(|s| s.points.iter());
    if chart.series.is_empty() {
        bail!("nothing to plot");
    }
    let (mut x0, mut x1) = all().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let y1 = all().fold(0.0f64, |a, p| a.max(p.1)) * 1.1;
    if chart.log_x && x0 <= 0.0 {
        bail!("a logarithmic x axis needs positive x values");
    }
    if x0 == x1 {
        (x0, x1) = (x0 * 0.5, x1 * 1.5 + 1.0);
    }
    let y1 = if y1 > 0.0 { y1 } else { 1.0 };
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).context("drawing the plot")?;
    let colors = [BLUE, RED, GREEN, MAGENTA, BLACK, CYAN];
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(70);
    macro_rules! lines {
        ($chart:expr) => {{
            let mut c = $chart;
            c.configure_mesh()
                .x_desc(chart.x_label.as_str())
                .y_desc(chart.y_label.as_str())
                .draw()
                .context("drawing the plot")?;
            for (i, s) in chart.series.iter().enumerate() {
                let color = colors[i % colors.len()];
                c.draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
                    .context("drawing the plot")?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
                c.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .context("drawing the plot")?;
            }
            c.configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .context("drawing the plot")?;
        }};
    }
    if chart.log_x {
        lines!(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), 0.0..y1)
                .context("drawing the plot")?
        );
    } else {
        lines!(
            builder
                .build_cartesian_2d(x0..x1, 0.0..y1)
                .context("drawing the plot")?
        );
    }
    root.present().context("writing the plot")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_read_and_bad_ones_refused() {
        let s = Series::parse("tandem=16:1.5e6, 256:1.4e6").expect("valid");
        assert_eq!(s.name, "tandem");
        assert_eq!(s.points, vec![(16.0, 1.5e6), (256.0, 1.4e6)]);
        for bad in ["no-equals", "a=", "a=1", "a=1:x", "a=1:inf"] {
            assert!(Series::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_chart_is_drawn_as_svg() {
        let path = std::env::temp_dir().join(format!("tandem-plot-{}.svg", std::process::id()));
        let chart = Chart {
            title: "rate against flows".into(),
            x_label: "flows".into(),
            y_label: "packets/s".into(),
            log_x: true,
            series: vec![Series::parse("a=1:1,10:3,100:2").expect("valid")],
        };
        draw(&chart, &path).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).ok();
        assert!(svg.starts_with("<svg") && svg.contains("rate against flows"));
        let flat = Chart {
            log_x: true,
            series: vec![Series::parse("a=0:1").expect("valid")],
            ..chart
        };
        assert!(draw(&flat, &path).is_err());
    }
}
