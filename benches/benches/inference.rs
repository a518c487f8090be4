//! Host inference throughput of pi-core (criterion). Throughput is reported in MACs, so
//! "Melem/s" reads as million multiply-accumulates per second.

use benches::{cases, input_for};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pi_core::Model;

fn inference(c: &mut Criterion) {
    let mut group = c.benchmark_group("pi_core_infer");
    for (name, spec) in cases() {
        let bytes = spec.to_bytes().expect("fixtures are valid");
        let model = Model::parse(&bytes).expect("fixtures parse");
        let input = input_for(&spec);
        let mut arena = vec![0i32; model.arena_words()];
        group.throughput(Throughput::Elements(model.macs()));
        group.bench_function(name, |b| {
            b.iter(|| {
                let out = model.infer(&input, &mut arena).expect("valid buffers");
                std::hint::black_box(out[0])
            })
        });
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let spec = benches::resnet_cifar(3, 16, 0.1);
    let bytes = spec.to_bytes().expect("valid");
    c.bench_function("pi_core_parse/resnet20_w16_10pct_relus", |b| {
        b.iter(|| Model::parse(std::hint::black_box(&bytes)).map(|m| m.arena_words()))
    });
}

criterion_group!(benches, inference, parse);
criterion_main!(benches);
