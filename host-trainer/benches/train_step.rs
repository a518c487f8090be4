//! Trainer throughput per architecture (criterion, flex CPU backend): one forward pass in eval
//! mode and one training step (forward, cross-entropy, backward, Adam) on a batch of random
//! images. Throughput is reported in images.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use host_trainer::backend::Backend;
use host_trainer::model::spec::Chw;
use host_trainer::model::{Arch, Net};

/// (name, architecture, input shape, batch).
fn cases() -> Vec<(&'static str, Arch, Chw, usize)> {
    vec![
        ("digits-cnn", Arch::DigitsCnn, Chw { c: 1, h: 8, w: 8 }, 32),
        ("lenet", Arch::Lenet, Chw { c: 1, h: 28, w: 28 }, 64),
        (
            "resnet8",
            Arch::Resnet { depth: 8 },
            Chw { c: 3, h: 32, w: 32 },
            32,
        ),
        (
            "resnet20",
            Arch::Resnet { depth: 20 },
            Chw { c: 3, h: 32, w: 32 },
            32,
        ),
    ]
}

fn batch(input: Chw, n: usize, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let pixels: Vec<f32> = (0..n * input.c * input.h * input.w)
        .map(|i| {
            ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f32 / (1u64 << 24) as f32
                - 0.5
        })
        .collect();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 10).collect();
    let images = Tensor::from_data(
        TensorData::new(pixels, [n, input.c, input.h, input.w]),
        device,
    );
    let targets = Tensor::from_data(TensorData::new(labels, [n]), device);
    (images, targets)
}

fn trainer(c: &mut Criterion) {
    for (name, arch, input, n) in cases() {
        let spec = arch
            .spec(input, None, 10)
            .expect("standard architectures build");
        let mut group = c.benchmark_group(format!("trainer/{name}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(n as u64));

        let device = Backend::Flex.device().expect("flex is the default backend");
        let net = Net::seeded(&spec, &device, 1).valid();
        let (images, _) = batch(input, n, &device);
        group.bench_function(format!("forward, batch {n}"), |b| {
            b.iter(|| net.forward(images.clone()).into_data())
        });

        let device = Backend::Flex
            .train_device()
            .expect("flex is the default backend");
        let (images, targets) = batch(input, n, &device);
        let ce = CrossEntropyLossConfig::new().init(&device);
        let mut optim = AdamConfig::new().init();
        let mut model = Some(Net::seeded(&spec, &device, 1));
        group.bench_function(format!("train step, batch {n}"), |b| {
            b.iter(|| {
                let Some(m) = model.take() else { return };
                let loss = ce.forward(m.forward(images.clone()), targets.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &m);
                model = Some(optim.step(1e-3, m, grads));
            })
        });
        group.finish();
    }
}

criterion_group!(benches, trainer);
criterion_main!(benches);
