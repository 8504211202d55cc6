"""Story dedup: exact hashes, MinHash signatures, band keys, the online collapse."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.ingest.dedup import (
    JACCARD_THRESHOLD,
    NUM_BANDS,
    NUM_PERM,
    Signature,
    band_keys,
    collapse_report,
    content_hash,
    is_near_duplicate,
    shingle_ids,
    shingles,
    signature,
    similarity,
    words,
)

# Two different articles on the same topic (Indonesian, as the corpus), and an unrelated one.
ARTICLE = """Bisnis.com, JAKARTA — Korea Utara mengirim menteri luar negerinya ke Rusia untuk perjalanan ketiganya dalam waktu kurang dari setahun tepat ketika pasukannya tiba di wilayah Kursk, Rusia, dekat perbatasan dengan Ukraina.
Mengutip kantor berita Korea Utara, KCNA pada Selasa (29/10/2024), Menteri Luar Negeri Choe Son Hui meninggalkan Pyongyang pada Senin waktu setempat. Dia memimpin sebuah delegasi dalam kunjungan resmi ke Rusia.
Secara terpisah, Kantor Berita Yonhap melaporkan bahwa agenda Choe dapat mencakup pembicaraan untuk mengatur kemungkinan perjalanan pemimpin Korea Utara Kim Jong Un ke Moskow, tanpa mengutip sumbernya.
Dikutip dari Bloomberg, Choe akan berdiskusi dengan rekan-rekan Rusianya tentang hubungan bilateral serta isu-isu politik internasional untuk menindaklanjuti pertemuan para pemimpin mereka pada bulan Juni, kata kedutaan Rusia di Pyongyang.
Dalam pertemuan Juni lalu, Presiden Rusia Vladimir Putin dan Kim Jong Un sepakat untuk segera memberikan bantuan militer jika salah satu dari mereka diserang.
Meningkatnya hubungan antara Korea Utara dan Rusia telah membuat khawatir Korea Selatan dan sekutu-sekutunya, dan mereka telah mendiskusikan opsi-opsi untuk melawan tindakan tersebut.
Sebagai tanggapan, Seoul telah meningkatkan prospek memasok senjata ke Ukraina, menggarisbawahi risiko menyeret semenanjung Korea yang terpecah ke dalam konflik. Korea Selatan juga mengirimkan pejabat tinggi ke Ukraina untuk berbagi informasi.
"Kolusi militer ilegal antara Rusia dan Korea Utara merupakan ancaman keamanan serius bagi komunitas internasional," kata Presiden Korea Selatan Yoon Suk Yeol dalam rapat Kabinet pada Selasa waktu setempat.
Masih belum jelas bagaimana pasukan Korea Utara akan membantu perjuangan Rusia melawan Ukraina, serta kapan atau apakah mereka akan terlibat dalam pertempuran.
Kunjungan publik terakhir Choe ke Moskow adalah pada Januari ketika dia mengadakan pembicaraan dengan Presiden Putin dalam pertemuan yang dianggap AS dan mitra-mitranya sebagai fasilitasi pengiriman senjata."""

SAME_TOPIC = """Jakarta, CNN Indonesia — Pemerintah Korea Selatan menyatakan akan meninjau ulang kebijakan larangan ekspor senjata mematikan ke Ukraina setelah intelijen Seoul memastikan ribuan tentara Korea Utara sudah berada di Rusia.
Juru bicara kantor kepresidenan mengatakan langkah itu bergantung pada seberapa jauh keterlibatan pasukan Pyongyang dalam perang di Ukraina, dan keputusan akan diambil bersama sekutu.
Menurut Badan Intelijen Nasional, sekitar 3.000 tentara Korea Utara telah dikirim ke wilayah timur Rusia untuk menjalani pelatihan sebelum diterjunkan ke garis depan di Kursk.
NATO juga mengonfirmasi pengerahan pasukan tersebut. Sekretaris Jenderal NATO Mark Rutte menyebut hal ini sebagai eskalasi signifikan dan perluasan berbahaya dari perang Rusia.
Sementara itu Kremlin tidak membantah laporan tersebut dan menyebut kerja sama militer dengan Pyongyang sebagai urusan kedua negara yang berdaulat.
Analis menilai Moskow membutuhkan tambahan personel setelah kehilangan banyak tentara, sementara Pyongyang mendapat imbalan berupa teknologi dan pasokan energi."""


def paragraphs(text: str) -> list[str]:
    return text.split("\n")


def test_revision_with_one_paragraph_edited_is_caught() -> None:
    paras = paragraphs(ARTICLE)
    paras[4] = (
        "Dalam pertemuan bulan Juni, Putin dan Kim menandatangani pakta pertahanan bersama yang mewajibkan bantuan militer segera."
    )
    revised = "\n".join(paras)
    a, b = signature(ARTICLE), signature(revised)
    assert set(band_keys(a)) & set(band_keys(b))
    assert is_near_duplicate(a, b)


def test_revision_with_sentence_appended_is_caught() -> None:
    revised = (
        ARTICLE
        + "\nArtikel ini telah diperbarui dengan tanggapan Kementerian Luar Negeri Rusia pada Selasa malam."
    )
    a, b = signature(ARTICLE), signature(revised)
    assert set(band_keys(a)) & set(band_keys(b))
    assert is_near_duplicate(a, b)


def test_republished_copy_with_other_outlet_header_is_caught() -> None:
    copy = (
        ARTICLE.replace("Bisnis.com, JAKARTA —", "JAKARTA, KOMPAS.com -", 1)
        + "\nEditor: Sandro Gatra"
    )
    a, b = signature(ARTICLE), signature(copy)
    assert set(band_keys(a)) & set(band_keys(b))
    assert is_near_duplicate(a, b)


def test_different_articles_on_the_same_topic_are_not_merged() -> None:
    a, b = signature(ARTICLE), signature(SAME_TOPIC)
    assert similarity(a, b) < 0.2
    assert not is_near_duplicate(a, b)
    assert not set(band_keys(a)) & set(band_keys(b))


def test_collapse_report_groups_the_revisions_only() -> None:
    paras = paragraphs(ARTICLE)
    edited = "\n".join(
        [
            *paras[:2],
            "Paragraf ini ditulis ulang seluruhnya oleh redaksi setelah klarifikasi.",
            *paras[3:],
        ]
    )
    texts = [
        ARTICLE,
        SAME_TOPIC,
        edited,
        ARTICLE.replace("\n", "\n\n"),
        "Berita lain sama sekali tentang sepak bola.",
    ]
    assert collapse_report(texts) == [[0, 2, 3]]


def test_content_hash_ignores_case_punctuation_and_whitespace() -> None:
    base = content_hash("Hello, world! This is   Pantau.")
    assert content_hash("hello world this is pantau") == base
    assert content_hash("  HELLO ,  WORLD !\nThis is\tPantau . ") == base
    assert content_hash("hello world this was pantau") != base
    assert len(base) == 64


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), max_size=40))
def test_content_hash_stable_under_whitespace_changes(words: list[str]) -> None:
    text = " ".join(words)
    respaced = re.sub(r"\s+", lambda m: "\n\t " if len(m.group(0)) % 2 else "  ", f"  {text}  ")
    assert content_hash(respaced) == content_hash(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_signature_is_deterministic(text: str) -> None:
    one, two = signature(text), signature(text)
    assert one == two
    assert band_keys(one) == band_keys(two)
    assert Signature.from_str(one.to_str()) == one
    if one.empty:
        assert band_keys(one) == [] and not is_near_duplicate(one, two)
    else:
        assert len(one.values) == NUM_PERM and len(band_keys(one)) == NUM_BANDS
        assert is_near_duplicate(one, two)
        assert all(0 <= v < 2**32 for v in one.values)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["kim", "putin", "rusia", "korea", "ke", "di", "1", "ñ", "x"]), max_size=60
    )
)
def test_shingle_ids_number_the_distinct_shingles(tokens: list[str]) -> None:
    """One id per distinct shingle string: folding word hashes loses no shingle (repeats of a
    small vocabulary make many equal and many nearly equal shingles)."""
    text = " ".join(tokens)
    assert len(shingle_ids(words(text))) == len(shingles(text))
    assert signature(text).shingle_count == len(shingles(text))


def test_signature_values_are_pinned() -> None:
    """Signatures live in Redis across deploys: a change here must bump SIGNATURE_VERSION."""
    sig = signature("the quick brown fox jumps over the lazy dog")
    assert sig.shingle_count == 7
    assert band_keys(sig)[0] == "mh4:00:14ac28ff085f0a006e7c6d90"
    assert sig.values[:3] == (346827007, 140446208, 1853648272)
    assert sig == Signature.from_str(sig.to_str())
    assert signature("The QUICK brown fox, jumps over the lazy dog!") == sig


def test_threshold_constant_is_sane() -> None:
    assert 0.3 <= JACCARD_THRESHOLD <= 0.8
