//! Private-inference building blocks (criterion): the client's garbled-ReLU evaluation and the
//! server's garbling (half-gates, TCCR over fixed-key AES), one ReLU at a time and eight in
//! lock-step, full and sign circuits; ChaCha20 mask generation, a conv layer over Z_2^64 shares,
//! and the cost model over a whole ResNet-20.

use benches::{conv_layer, resnet_cifar};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pi_core::Model;
use pi_core::cost::{CORTEX_M4_64, CostModel, LTE, Protocol};
use pi_core::share::GcMaterial;
use pi_core::share::gc::{
    self, GcHash, SHARE_BITS, TABLE_LABELS, encode, evaluate_relu, garble_relu,
};
use pi_core::share::prg::{Prg, Purpose};

const SEED: [u8; 32] = [7; 32];

fn labels(prg: &mut Prg) -> [u128; SHARE_BITS] {
    core::array::from_fn(|_| prg.next_u128())
}

fn garbled_relu(c: &mut Criterion) {
    let hash = GcHash::new();
    let mut prg = Prg::new(&SEED, 0, Purpose::Server);
    let delta = prg.next_u128() | 1;
    let (server_zero, client_zero, mask_zero) =
        (labels(&mut prg), labels(&mut prg), labels(&mut prg));
    let mut tables = [0u128; TABLE_LABELS];
    let mut group = c.benchmark_group("garbled_relu");
    group.throughput(Throughput::Elements(gc::RELU_AND_GATES as u64));
    group.bench_function("garble (server)", |b| {
        b.iter(|| {
            garble_relu(
                &hash,
                delta,
                1,
                &server_zero,
                &client_zero,
                &mask_zero,
                &mut tables,
            )
        })
    });
    let decode = garble_relu(
        &hash,
        delta,
        1,
        &server_zero,
        &client_zero,
        &mask_zero,
        &mut tables,
    );
    let material = GcMaterial {
        tables,
        client_labels: encode(&client_zero, delta, 12345),
        mask_labels: encode(&mask_zero, delta, 999),
        decode,
    };
    let server_labels = encode(&server_zero, delta, (-4321i64) as u64);
    group.bench_function("evaluate (client)", |b| {
        b.iter(|| evaluate_relu(&hash, 1, &material, std::hint::black_box(&server_labels)))
    });
    group.finish();
}

/// One ReLU at a time against eight in lock-step (`garble_relus`/`evaluate_relus`), the full
/// circuit and the 16-bit sign circuit; throughput in AND gates.
fn lock_step(c: &mut Criterion) {
    const B: usize = 8;
    let hash = GcHash::new();
    let mut prg = Prg::new(&SEED, 1, Purpose::Server);
    let delta = prg.next_u128() | 1;
    let zero: [[u128; SHARE_BITS]; B] = core::array::from_fn(|_| labels(&mut prg));
    let gcs: [u64; B] = core::array::from_fn(|i| i as u64);
    let mut ms: Vec<GcMaterial> = vec![GcMaterial::EMPTY; B];
    let mut group = c.benchmark_group("garbled_relu_lock_step");
    group.throughput(Throughput::Elements((B * gc::RELU_AND_GATES) as u64));
    group.bench_function("full: garble 8, one at a time", |b| {
        b.iter(|| {
            for (i, m) in ms.iter_mut().enumerate() {
                garble_relu(
                    &hash,
                    delta,
                    i as u64,
                    &zero[i],
                    &zero[i],
                    &zero[i],
                    &mut m.tables,
                );
            }
        })
    });
    group.bench_function("full: garble 8 in lock-step", |b| {
        b.iter(|| {
            let tables: &mut [GcMaterial; B] = ms.as_mut_slice().try_into().expect("eight");
            gc::garble_relus(
                &hash,
                delta,
                gcs,
                zero.each_ref(),
                zero.each_ref(),
                zero.each_ref(),
                tables.each_mut().map(|m| &mut m.tables),
            )
        })
    });
    let server: [[u128; SHARE_BITS]; B] =
        core::array::from_fn(|i| encode(&zero[i], delta, i as u64));
    group.bench_function("full: evaluate 8, one at a time", |b| {
        b.iter(|| {
            for (i, m) in ms.iter().enumerate() {
                evaluate_relu(&hash, i as u64, m, std::hint::black_box(&server[i]));
            }
        })
    });
    group.bench_function("full: evaluate 8 in lock-step", |b| {
        let materials: [&GcMaterial; B] = core::array::from_fn(|i| &ms[i]);
        b.iter(|| {
            gc::evaluate_relus(
                &hash,
                gcs,
                materials,
                std::hint::black_box(server.each_ref()),
            )
        })
    });
    const T: usize = 16;
    group.throughput(Throughput::Elements((B * gc::sign_and_gates(T)) as u64));
    group.bench_function("sign t=16: garble 8, one at a time", |b| {
        b.iter(|| {
            for (i, m) in ms.iter_mut().enumerate() {
                gc::garble_signs(
                    &hash,
                    delta,
                    [i as u64],
                    [&zero[i][..T]],
                    [&zero[i][..T]],
                    [&mut m.tables[..]],
                );
            }
        })
    });
    group.bench_function("sign t=16: garble 8 in lock-step", |b| {
        b.iter(|| {
            let tables: &mut [GcMaterial; B] = ms.as_mut_slice().try_into().expect("eight");
            gc::garble_signs(
                &hash,
                delta,
                gcs,
                core::array::from_fn(|i| &zero[i][..T]),
                core::array::from_fn(|i| &zero[i][..T]),
                tables.each_mut().map(|m| &mut m.tables[..]),
            )
        })
    });
    group.bench_function("sign t=16: evaluate 8, one at a time", |b| {
        b.iter(|| {
            for (i, m) in ms.iter().enumerate() {
                gc::evaluate_signs(&hash, [i as u64], [m], [&server[i][..T]]);
            }
        })
    });
    group.bench_function("sign t=16: evaluate 8 in lock-step", |b| {
        let materials: [&GcMaterial; B] = core::array::from_fn(|i| &ms[i]);
        b.iter(|| {
            gc::evaluate_signs(
                &hash,
                gcs,
                materials,
                core::array::from_fn(|i| &server[i][..T]),
            )
        })
    });
    group.finish();
}

fn masks(c: &mut Criterion) {
    let mut out = vec![0u64; 4096];
    let mut group = c.benchmark_group("chacha20_masks");
    group.throughput(Throughput::Bytes(8 * out.len() as u64));
    group.bench_function("4096 words", |b| {
        b.iter(|| Prg::new(&SEED, 3, Purpose::LinearInput).fill(&mut out))
    });
    group.finish();
}

fn shared_conv(c: &mut Criterion) {
    let bytes = conv_layer(16, 32).to_bytes().expect("valid fixture");
    let model = Model::parse(&bytes).expect("fixture parses");
    let layer = model.layer(0).expect("one layer");
    let pi_core::Op::Conv2d(conv) = layer.op else {
        unreachable!("the fixture is one convolution")
    };
    let input: Vec<u64> = (0..layer.input_shape.elements() as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let mut output = vec![0u64; layer.output_shape.elements()];
    let mut group = c.benchmark_group("conv_on_shares");
    group.throughput(Throughput::Elements(layer.macs()));
    group.bench_function("conv3x3_16ch_32x32 over Z_2^64", |b| {
        b.iter(|| {
            pi_core::share::linear::conv2d(
                &conv,
                layer.input_shape,
                layer.output_shape,
                &input,
                &mut output,
            )
        })
    });
    group.finish();
}

fn cost_model(c: &mut Criterion) {
    let bytes = resnet_cifar(3, 16, 0.1).to_bytes().expect("valid fixture");
    let model = Model::parse(&bytes).expect("fixture parses");
    let cost = CostModel::new(Protocol::RingGc, CORTEX_M4_64, LTE);
    let mut group = c.benchmark_group("cost_model");
    group.bench_function("ring-gc, resnet20_w16_10pct_relus", |b| {
        b.iter(|| cost.for_each_layer(&model, |_| {}).online_latency_us)
    });
    group.finish();
}

criterion_group!(
    benches,
    garbled_relu,
    lock_step,
    masks,
    shared_conv,
    cost_model
);
criterion_main!(benches);
