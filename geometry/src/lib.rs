//! Mask geometry shared by the host and the plugins: the outline of a binary mask's largest
//! piece, and simplifying an outline. No dependencies, and nothing here crosses the plugin
//! boundary.

pub mod contour;
pub mod simplify;

pub use contour::{area, outline_of_bits, outline_of_runs};
pub use simplify::{douglas_peucker, drop_collinear};
