//! What the host accepts from an adapter: it drops what a faulty one could send, so one bad
//! instance never breaks a task's answer, let alone another task's.

use plugin_api::{BoxGeometry, FrameOutput, Instance, Mask};

use labelstudio_protocol::results::ImageSize;

/// Keeps instances and classes with known class ids and finite numbers, masks that cover the
/// image exactly, and at most `max_det` of each.
pub fn sanitize(mut frame: FrameOutput, classes: usize, max_det: usize, size: ImageSize) -> FrameOutput {
    let known = |class_id: u32| (class_id as usize) < classes;
    frame
        .instances
        .retain(|i| known(i.class_id) && i.score.is_finite() && finite_shapes(i, size));
    frame.instances.truncate(max_det);
    frame.classes.retain(|c| known(c.class_id) && c.score.is_finite());
    frame.classes.truncate(max_det);
    frame
}

fn finite_box(b: &BoxGeometry) -> bool {
    [b.x, b.y, b.width, b.height, b.rotation].iter().all(|v| v.is_finite())
}

fn whole_image(m: &Mask, size: ImageSize) -> bool {
    (m.width, m.height) == (size.width, size.height)
        && m.runs.iter().map(|r| *r as u64).sum::<u64>() == size.width as u64 * size.height as u64
}

fn finite_shapes(i: &Instance, size: ImageSize) -> bool {
    i.bbox.as_ref().into_option().is_none_or(finite_box)
        && i.mask.as_ref().into_option().is_none_or(|m| whole_image(m, size))
        && i.polygons.iter().flatten().all(|p| p.x.is_finite() && p.y.is_finite())
        && i.keypoints
            .iter()
            .all(|k| k.x.is_finite() && k.y.is_finite() && k.score.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{ClassScore, Point};

    const SIZE: ImageSize = ImageSize { width: 2, height: 2 };

    fn boxed(class_id: u32, x: f32) -> Instance {
        Instance::new(class_id, 0.9).with_box(BoxGeometry::from_corners(x, 0.0, x + 1.0, 1.0))
    }

    #[test]
    fn unknown_classes_and_non_finite_numbers_are_dropped() {
        let frame = FrameOutput::instances(vec![
            boxed(0, f32::NAN),
            boxed(5, 0.0),
            boxed(1, 0.0).with_polygon(vec![Point {
                x: f32::INFINITY,
                y: 0.0,
            }]),
            boxed(1, 1.0),
        ]);
        let kept = sanitize(frame, 2, 300, SIZE);
        assert_eq!(kept.instances.len(), 1);
        assert_eq!(kept.instances[0].bbox.map(|b| b.x), plugin_api::ROption::RSome(1.0));
    }

    #[test]
    fn a_mask_of_another_size_drops_its_instance_and_max_det_caps() {
        let wrong = Mask {
            width: 3,
            height: 2,
            runs: vec![6].into(),
        };
        let right = Mask {
            width: 2,
            height: 2,
            runs: vec![1, 3].into(),
        };
        let frame = FrameOutput::instances(vec![
            boxed(0, 0.0).with_mask(wrong),
            boxed(0, 0.0).with_mask(right.clone()),
            boxed(0, 1.0).with_mask(right),
        ]);
        assert_eq!(sanitize(frame.clone(), 1, 300, SIZE).instances.len(), 2);
        assert_eq!(sanitize(frame, 1, 1, SIZE).instances.len(), 1);
        let classes = FrameOutput::classes(vec![
            ClassScore {
                class_id: 0,
                score: f32::NAN,
            },
            ClassScore {
                class_id: 1,
                score: 0.5,
            },
        ]);
        assert_eq!(sanitize(classes, 2, 300, SIZE).classes.len(), 1);
    }
}
