#pragma once
// Per-chart export (issue 14: figures per plot, not window screenshots):
// every chart (chart.cpp) draws "PNG" and "CSV" buttons above itself. CSV is
// written at once from the chart's series; PNG after the frame is rendered,
// from the chart's pixels (screenshot.cpp reads them). Files go to the export
// folder (default "figures"), named <view id>_<chart id>.{png,csv}, written
// atomically; the last ones written are listed for the status line and for
// scripts (export_charts DIR exports every chart drawn in the next frame).
#include <string>
#include <vector>

#include "plot.h"

namespace attnlab_gui {

// Chart side, in draw order: data (remembered for this frame), buttons, then
// after ImPlot::EndPlot the chart's rectangle.
void chart_export_data(const char * id, const std::vector<series> & ss);
void chart_export_buttons(const char * id);
void chart_export_rect(const char * id);

void chart_export_dir_set(const std::string & dir);
const std::string & chart_export_dir();
// Every chart drawn in the next frame, into dir.
void chart_export_all(const std::string & dir);

// Frame loop side (screenshot.cpp), after rendering: the PNGs due, read from
// the back buffer (fb_w x fb_h; the window is fb_scale times smaller).
void chart_export_after_render(int fb_w, int fb_h, float fb_scale);

// Paths written so far (newest last) and the last error ("" when none).
const std::vector<std::string> & chart_export_written();
const std::string & chart_export_error();

// "Title###view_id" -> "view_id_chart" (letters, digits, '_' and '-' only).
std::string chart_export_name(const std::string & window_name, const std::string & chart_id);

} // namespace attnlab_gui
