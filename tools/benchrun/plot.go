package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// palette colours the bars of each column's server: ours, Node, then the
// others.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// panel is one bar chart of the figure: one group of bars (ours, Node, or
// the variants compared) per figure shown.
type panel struct {
	title, xlabel, ylabel string
	limit                 float64 // a target drawn as a dashed line, if > 0
	limitLabel            string
	groups                []group
}

// group is one group of bars: a figure of one scenario, for each server.
type group struct {
	label    string
	scenario string
	value    func(*loadResult) float64
}

// sameFigure makes one group per scenario, each showing the same figure.
func sameFigure(labels, scenarios []string, value func(*loadResult) float64) []group {
	out := make([]group, len(scenarios))
	for i, sc := range scenarios {
		out[i] = group{label: labels[i], scenario: sc, value: value}
	}
	return out
}

// plot draws the suite's panels in two rows.
func (r *report) plot(path string) error {
	panels := r.benchPanels()
	if r.Suite == suiteScale {
		panels = r.scalePanels()
	}
	cols := (len(panels) + 1) / 2
	plots := [][]*plot.Plot{make([]*plot.Plot, cols), make([]*plot.Plot, cols)}
	for i, pn := range panels {
		p, err := r.barPanel(pn)
		if err != nil {
			return err
		}
		plots[i/cols][i%cols] = p
	}
	if len(panels)%2 == 1 {
		plots[1][cols-1] = plot.New()
	}

	width, height := vg.Length(cols)*14*vg.Centimeter, 20*vg.Centimeter
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	title := fmt.Sprintf("%s, %s (%s)", r.title(), r.Started.Format("2006-01-02"), r.Machine)
	header := plot.New()
	font := header.Title.TextStyle
	font.Font.Size = vg.Points(10)
	dc.FillText(font, vg.Point{X: width / 2, Y: height - vg.Points(14)}, title)
	tiles := draw.Tiles{
		Rows: 2, Cols: cols,
		PadX: vg.Centimeter, PadY: vg.Centimeter,
		PadTop: vg.Points(36), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(10),
	}
	canvases := plot.Align(plots, tiles, dc)
	for j := range plots {
		for i := range plots[j] {
			plots[j][i].Draw(canvases[j][i])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// benchPanels are the figures of make bench: saturation throughput and p99
// latency at a fixed rate for each client count, idle memory per
// connection, and polling throughput.
func (r *report) benchPanels() []panel {
	counts := []string{"100", "1000", "5000"}
	return []panel{
		{
			title: "Fan-out at saturation (WebSocket)", xlabel: "clients", ylabel: "deliveries/s",
			groups: sameFigure(counts, []string{"ws-sat-100", "ws-sat-1000", "ws-sat-5000"},
				func(x *loadResult) float64 { return x.DeliveriesPerSec }),
		},
		{
			title: "p99 latency at 20k deliveries/s (WebSocket)", xlabel: "clients", ylabel: "ms",
			groups: sameFigure(counts, []string{"ws-20k-100", "ws-20k-1000", "ws-20k-5000"},
				func(x *loadResult) float64 { return x.LatencyMs.P99 }),
		},
		{
			title: "RSS per idle WebSocket connection", ylabel: "KiB", limit: 10, limitLabel: "target ≤ 10 KiB",
			groups: []group{{label: "10k clients", scenario: "ws-idle-10k", value: func(x *loadResult) float64 { return x.RSSPerConnKB }}},
		},
		{
			title: "Polling-only fan-out at saturation", ylabel: "deliveries/s",
			groups: []group{{label: "1000 clients", scenario: "poll-sat-1000", value: func(x *loadResult) float64 { return x.DeliveriesPerSec }}},
		},
	}
}

func (r *report) barPanel(pn panel) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = pn.title
	p.X.Label.Text = pn.xlabel
	p.Y.Label.Text = pn.ylabel
	p.Y.Min = 0
	p.Y.Tick.Marker = humanTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	barWidth := vg.Points(28)
	cols := r.columns()
	for k, srv := range cols {
		vals := make(plotter.Values, len(pn.groups))
		for i, g := range pn.groups {
			if res := r.get(g.scenario, srv); usable(res) {
				vals[i] = g.value(res)
			}
		}
		bars, err := plotter.NewBarChart(vals, barWidth)
		if err != nil {
			return nil, err
		}
		bars.LineStyle.Width = 0
		bars.Color = palette[k%len(palette)]
		bars.Offset = barWidth * vg.Length(2*k-len(cols)+1) / 2
		p.Add(bars)
		p.Legend.Add(r.Servers[srv], bars)
	}
	if pn.limit > 0 {
		n := float64(len(pn.groups))
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: pn.limit}, {X: n - 0.5, Y: pn.limit}})
		if err != nil {
			return nil, err
		}
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		line.Color = color.Gray{Y: 0x40}
		p.Add(line)
		p.Legend.Add(pn.limitLabel, line)
	}
	labels := make([]string, len(pn.groups))
	for i, g := range pn.groups {
		labels[i] = g.label
	}
	if len(labels) == 1 {
		// Name the client count that was actually run (-quick runs fewer).
		for _, srv := range cols {
			if res := r.get(pn.groups[0].scenario, srv); res != nil && res.Clients > 0 {
				labels[0] = clientCount(res.Clients) + " clients"
				break
			}
		}
	}
	p.NominalX(labels...)
	// Leave headroom above the tallest bar for the legend.
	p.Y.Min = 0
	p.Y.Max *= 1.25
	if p.Y.Max <= 0 {
		p.Y.Max = 1
	}
	return p, nil
}

// humanTicks labels the y axis with k/M suffixes instead of exponents.
type humanTicks struct{}

func (humanTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = count(ticks[i].Value)
		}
	}
	return ticks
}

// clientCount writes 10000 as 10k and 1000 as 1k.
func clientCount(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
