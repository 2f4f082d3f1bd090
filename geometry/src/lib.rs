//! Mask geometry shared by the host and the plugins: the outlines of a binary mask's pieces,
//! and simplifying an outline. No dependencies, and nothing here crosses the plugin
//! boundary.

pub mod contour;
pub mod runs;
pub mod simplify;

pub use contour::{area, outline_of_bits, outline_of_runs, outlines_of_bits};
pub use runs::runs_of_bits;
pub use simplify::{douglas_peucker, drop_collinear};
